//! Per-particle outcome codes, fixed by `docs/method.md` (Statuses) and
//! written as a uchar `status` property.

/// What happened to one particle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Status {
    /// Projected with the configured fit.
    Ok = 0,
    /// Projected with a lower-degree fit (small or degenerate neighbourhood,
    /// or the configured fit would have moved the particle too far).
    LowerDegree = 1,
    /// More than one step was allowed and the last two differ by more than
    /// the tolerance; the last iterate is written.
    NotConverged = 2,
    /// Fewer than 3 weighted neighbours: input position, normal (0, 0, 0).
    TooFewNeighbours = 3,
    /// The particle is not finite: written as read.
    InvalidInput = 4,
    /// Every fit would move the particle farther than the support, or the
    /// neighbourhood is a line: input position kept.
    Rejected = 5,
}

impl Status {
    /// Every status in code order.
    pub const ALL: [Status; 6] = [
        Status::Ok,
        Status::LowerDegree,
        Status::NotConverged,
        Status::TooFewNeighbours,
        Status::InvalidInput,
        Status::Rejected,
    ];

    /// The code written to the output.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The name used in summaries and docs.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::LowerDegree => "lower_degree",
            Status::NotConverged => "not_converged",
            Status::TooFewNeighbours => "too_few_neighbours",
            Status::InvalidInput => "invalid_input",
            Status::Rejected => "rejected",
        }
    }

    /// What most often leads to this status, for the one-line warning of a
    /// run whose particles mostly end with it; `None` for projected ones.
    pub fn likely_cause(self) -> Option<&'static str> {
        match self {
            Status::Ok | Status::LowerDegree | Status::NotConverged => None,
            Status::TooFewNeighbours => Some(
                "the support is too small for the cloud's spacing, or the particles lie far from the cloud (see `mlsproj check` and `mlsproj info`)",
            ),
            Status::InvalidInput => Some("the particle file has NaN or infinite coordinates"),
            Status::Rejected => Some(
                "the particles lie far off the surface, beyond what its fits reach, or the cloud is a line there (scan lines); a larger support may help",
            ),
        }
    }

    /// True when the written position is a projection.
    pub fn is_projected(self) -> bool {
        matches!(
            self,
            Status::Ok | Status::LowerDegree | Status::NotConverged
        )
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
