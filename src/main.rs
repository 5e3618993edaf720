//! The `mlsproj` command: parse the command line, call the library, report.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use mlsproj::config::Config;
use mlsproj::pipeline::Tile;
use mlsproj::pipeline::inspect::Spread;
use mlsproj::render::{RenderOptions, Size, View};
use mlsproj::{RunOptions, Status};

/// Project particles onto the Moving Least Squares surface of a point cloud.
#[derive(Parser)]
#[command(
    version,
    about,
    long_about = None,
    after_help = "Start with `mlsproj init SCAN.ply`, then `mlsproj run job.ron`.\n\n\
Exit codes: 0 done; 1 refused or failed, nothing written (the message names the \
file, line or field); 2 bad command line; 3 the output was written but fewer than \
`min_projected` (default half) of the particles were projected; 130/143 \
interrupted (SIGINT/SIGTERM), nothing written."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the job of a RON config: read, project every particle, write the
    /// output (PLY, LAS/LAZ or text by its extension), and print counts per
    /// status and time per stage.
    Run {
        /// The job's RON config; paths inside are relative to its folder.
        config: PathBuf,
        /// Project only tile I of N (0-based, N at most 65536): the
        /// particles in the I-th of N slabs along the longest axis of their
        /// bounding box, cut to hold about equal numbers of particles, with
        /// only the part of the cloud they need (a `Seed` job: the seeds of
        /// the I-th of N runs of its seeding slabs, from the whole cloud).
        /// Writes OUTPUT with
        /// `.tile-IIII-of-NNNN` before its extension, recording which job
        /// it is a tile of; `mlsproj merge` joins the tiles. Each tile is an
        /// independent job (Slurm array, GNU parallel, Kubernetes Jobs).
        #[arg(long, value_name = "I/N")]
        tile: Option<Tile>,
        /// No progress bars (they are also off when stderr is not a
        /// terminal).
        #[arg(long, short)]
        quiet: bool,
    },
    /// Join the outputs of `run --tile 0/N` … `run --tile N-1/N` (or of
    /// `normals --tile`) into the config's output, in input order (a
    /// `Seed` job's in tile order, `index` numbered on from tile to tile,
    /// as one run writes them).
    Merge {
        /// The job's RON config (the same one the tiles ran).
        config: PathBuf,
        /// Number of tiles N (at most 65536).
        #[arg(long, value_parser = Tile::parse_count)]
        tiles: usize,
        /// No progress bars.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Validate a config and its inputs and say what would run (counts,
    /// support, neighbour counts on a sample) without writing anything.
    Check {
        /// The job's RON config.
        config: PathBuf,
    },
    /// Write a commented job config for a point cloud: the support that
    /// `info` suggests, the output beside the cloud, every other field at
    /// its default with its explanation. `mlsproj run` takes it at once.
    Init {
        /// The scanned cloud.
        cloud: PathBuf,
        /// Particles to project (a point file); without it the job smooths
        /// the cloud (projects its own points).
        #[arg(long)]
        particles: Option<PathBuf>,
        /// The config to write (never over an existing file).
        #[arg(short, long, default_value = "job.ron")]
        output: PathBuf,
    },
    /// Write the cloud's points unmoved, in input order, with oriented
    /// normals (estimated when it has none, or with `cloud_normals:
    /// Estimate`) and its other properties, to the config's output:
    /// for tools that need oriented normals. The particles play no part.
    Normals {
        /// The job's RON config.
        config: PathBuf,
        /// Only tile I of N (0-based, N at most 65536): the cloud's points
        /// in the I-th of N slabs along its longest axis, with normals
        /// estimated on the slab and a halo around it. Writes OUTPUT with
        /// `.tile-IIII-of-NNNN` before its extension; `mlsproj merge`
        /// joins the tiles. Directions are a whole run's; signs too, but
        /// on parts thinner than a neighbourhood (docs/normals.md).
        #[arg(long, value_name = "I/N")]
        tile: Option<Tile>,
        /// No progress bars.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Describe a point file: point count, bounding box, properties, mean
    /// nearest-neighbour spacing and support radii for about 30/100/300
    /// neighbours.
    Info {
        /// A point file: PLY, LAS/LAZ, E57, PCD or text (.xyz .pts .txt .csv).
        file: PathBuf,
    },
    /// Draw a point file as a PNG: orthographic, each point a disc shaded by
    /// a headlight from its normal (one-sided: flipped normals show dark),
    /// coloured by its own colour or by a property with a colour bar.
    Render {
        /// A point file: PLY, LAS/LAZ, E57, PCD or text (.xyz .pts .txt .csv).
        file: PathBuf,
        /// The PNG to write (never the input).
        #[arg(long, short)]
        output: PathBuf,
        /// Colour by this per-vertex property (mean_curvature, status,
        /// intensity, z, …) through the viridis map: floats from their 2nd
        /// to 98th percentile, integers from min to max.
        #[arg(long, value_name = "PROPERTY")]
        colour: Option<String>,
        /// top: down −z; front: along +y; side: along −x; iso: from (1, −1, 1).
        #[arg(long, default_value = "front", value_name = "top|front|side|iso")]
        view: View,
        /// Picture size in pixels.
        #[arg(long, default_value = "2000x1500", value_name = "WxH")]
        size: Size,
    },
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout with exit code 0.
        Err(error) if !error.use_stderr() => error.exit(),
        Err(error) => {
            eprintln!("mlsproj: {}", one_line(&error.to_string()));
            return ExitCode::from(2);
        }
    };
    match try_main(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("mlsproj: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Tells glibc's allocator to keep the memory a job frees and hand it out
/// again, where by default each large buffer (an index's columns, a pass
/// of results) is a fresh mapping, returned on free and faulted in page
/// by page when the next is made. sphere_large: page faults 131k → 101k,
/// system time 0.40 → 0.30 s; the seed arithmetic job (200k points) 6,714
/// → 4,878 faults, −3% CPU; the peak RSS unchanged (the freed memory is
/// what the next stage takes). A job's memory stays at its peak until it
/// ends, which a command that runs one job can afford; the library leaves
/// the allocator as its caller set it. A glibc that refuses a value keeps
/// its own (mallopt returns 0): the job runs the same, with more faults.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // Past 1 GiB a buffer is still mapped on its own: a 20M-point
        // cloud's largest arrays are its own mappings and leave when freed.
        const MAPPED_FROM: libc::c_int = 1 << 30;
        // SAFETY: mallopt only sets allocator parameters; called first in
        // main, before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MAPPED_FROM);
            libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
        }
    }
}

/// A command-line error on one line, like every other refusal: clap's
/// message (which may list arguments on the lines below it) without the
/// usage and the hint that follow it.
fn one_line(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more"))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    format!("{} (see --help)", lines.join(" "))
}

/// The exit code of a run that wrote its output but projected too few
/// particles.
const TOO_FEW_PROJECTED: u8 = 3;

fn try_main(cli: Cli) -> anyhow::Result<ExitCode> {
    let done = |result: anyhow::Result<()>| result.map(|()| ExitCode::SUCCESS);
    // Ctrl-C, or the SIGTERM a batch scheduler sends at its time limit,
    // must not leave a named temporary output behind.
    #[cfg(unix)]
    mlsproj::io::remove_temps_on_signals().context("cannot install the signal handler")?;
    match cli.command {
        Command::Run {
            config,
            tile,
            quiet,
        } => run(
            &load(&config)?,
            &RunOptions {
                progress: show_progress(quiet),
                tile,
            },
        ),
        Command::Merge {
            config,
            tiles,
            quiet,
        } => {
            let summary = mlsproj::pipeline::merge(&load(&config)?, tiles, show_progress(quiet))?;
            let passes = match summary.passes {
                1 => String::new(),
                passes => format!(" in {passes} passes"),
            };
            println!(
                "merged {} tiles{passes}, {} {}, into {}",
                summary.tiles,
                summary.particles,
                summary.command.counted(),
                summary.output.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config } => done(check(&load(&config)?)),
        Command::Init {
            cloud,
            particles,
            output,
        } => done(init(&cloud, particles.as_deref(), &output)),
        Command::Info { file } => done(info(&file)),
        Command::Normals {
            config,
            tile,
            quiet,
        } => {
            let (config, progress) = (load(&config)?, show_progress(quiet));
            let summary = match tile {
                None => mlsproj::pipeline::normals::write_normals(&config, progress)?,
                Some(tile) => {
                    mlsproj::pipeline::normals::write_normals_tile(&config, tile, progress)?
                }
            };
            println!(
                "wrote {} points with {} normals ({} without one) into {} in {:.1} ms",
                summary.points,
                if summary.estimated {
                    "estimated, oriented"
                } else {
                    "the cloud's"
                },
                summary.without_normal,
                summary.output.display(),
                summary.time.as_secs_f64() * 1e3
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Render {
            file,
            output,
            colour,
            view,
            size,
        } => {
            let options = RenderOptions { view, size, colour };
            let picture = mlsproj::render::render_file(&file, &output, &options)
                .with_context(|| format!("cannot render {}", file.display()))?;
            println!(
                "drew {} points ({view} view, {size}) into {}{}",
                picture.points,
                output.display(),
                cloud_note(picture.skipped, 0)
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    Config::load(path).context("invalid config")
}

/// Progress bars unless asked for quiet or stderr is not a terminal.
fn show_progress(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

fn run(config: &Config, options: &RunOptions) -> anyhow::Result<ExitCode> {
    let summary = mlsproj::run_with(config, options)?;
    println!(
        "cloud: {} points{}",
        summary.cloud_points,
        cloud_note(summary.skipped_cloud_points, summary.duplicate_cloud_points)
    );
    println!("particles: {}", summary.particles);
    if let Some(plan) = summary.seeding {
        println!(
            "seeding: spacing {:.6e}, estimated area {:.6e} (check predicts about {})",
            plan.spacing, plan.area, plan.predicted
        );
    }
    for status in Status::ALL {
        println!(
            "  {:<20} {}",
            status.name(),
            summary.status_counts[status.code() as usize]
        );
    }
    println!("normals oriented {}", summary.orientation);
    println!("fit: {}", fit_inputs(summary.normals_in_fit, config));
    let t = summary.timings;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    println!(
        "time: load {:.1} ms, tree {:.1} ms, project {:.1} ms, write {:.1} ms, total {:.1} ms",
        ms(t.load),
        ms(t.tree),
        ms(t.project),
        ms(t.write),
        ms(t.load + t.tree + t.project + t.write)
    );
    println!("wrote {}", summary.output.display());
    if let Some((status, count)) = summary.commonest_failure()
        && let Some(cause) = status.likely_cause()
    {
        eprintln!(
            "mlsproj: warning: {} of {} particles not projected, most of them {status} ({count}): {cause}",
            summary.particles - summary.projected(),
            summary.particles,
        );
    }
    if let Some(plan) = summary.seeding
        && summary.made_no_seeds(options.tile)
    {
        eprintln!(
            "mlsproj: error: no seeds made at spacing {:.4e} (about {} predicted); the output was written",
            plan.spacing, plan.predicted
        );
        return Ok(ExitCode::from(TOO_FEW_PROJECTED));
    }
    if summary.too_few_projected(config.min_projected) {
        eprintln!(
            "mlsproj: error: only {} of {} particles projected, below min_projected ({}); the output was written",
            summary.projected(),
            summary.particles,
            config.min_projected
        );
        return Ok(ExitCode::from(TOO_FEW_PROJECTED));
    }
    Ok(ExitCode::SUCCESS)
}

/// What was left out of the cloud, if anything, for the summary line.
fn cloud_note(skipped: usize, duplicates: usize) -> String {
    let mut notes = Vec::new();
    if skipped > 0 {
        notes.push(format!("{skipped} with non-finite coordinates skipped"));
    }
    if duplicates > 0 {
        notes.push(format!("{duplicates} duplicates merged"));
    }
    if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join(", "))
    }
}

fn check(config: &Config) -> anyhow::Result<()> {
    let report = mlsproj::pipeline::check(config)?;
    println!("config ok");
    println!(
        "cloud: {} ({} points{})",
        config.cloud.display(),
        report.cloud_points,
        cloud_note(report.skipped_cloud_points, report.duplicate_cloud_points)
    );
    match report.seeding {
        Some(plan) => println!(
            "particles: Seed: estimated area {:.6e}, spacing {:.6e}, about {} particles (max_particles {})",
            plan.area, plan.spacing, plan.predicted, config.max_particles
        ),
        None => println!(
            "particles: {} ({} invalid)",
            report.particles, report.invalid_particles
        ),
    }
    println!(
        "support: {:?}, weight {:?}, degree {}, {:?} projection, up to {} step(s)",
        config.support, config.weight, config.degree, config.projection, config.iterations
    );
    if let (Some(counts), Some(radii)) = (report.neighbour_counts, report.support_radii) {
        let Spread { min, median, max } = counts;
        println!("neighbours on a sample of particles: min {min}, median {median}, max {max}");
        if median < FEW_NEIGHBOURS {
            eprintln!(
                "mlsproj: warning: the median particle has {median} neighbours (below {FEW_NEIGHBOURS}): fits will be noisy or fail; a larger support helps (`mlsproj info` suggests radii)"
            );
        } else if median > MANY_NEIGHBOURS {
            eprintln!(
                "mlsproj: warning: the median particle has {median} neighbours (above {MANY_NEIGHBOURS}): the job will be slow and smooth away detail; a smaller support helps"
            );
        }
        let Spread { min, median, max } = radii;
        println!("support radius h: min {min:.6}, median {median:.6}, max {max:.6}");
    }
    println!("normals would be oriented {}", report.orientation);
    println!("fit: {}", fit_inputs(report.normals_in_fit, config));
    println!("would write {}", config.output.display());
    Ok(())
}

/// What the fits are made from, in words.
fn fit_inputs(normals_in_fit: bool, config: &Config) -> String {
    if normals_in_fit {
        format!(
            "the cloud's points and normals (normal_weight {})",
            config.normal_weight
        )
    } else if config.normal_weight > 0.0 {
        "the cloud's points (it has no normals)".into()
    } else {
        "the cloud's points (normal_weight 0)".into()
    }
}

/// Below this median neighbour count `check` warns that fits will fail.
const FEW_NEIGHBOURS: usize = 10;
/// Above this median neighbour count `check` warns of a slow, blurred job.
const MANY_NEIGHBOURS: usize = 5_000;

fn init(
    cloud: &std::path::Path,
    particles: Option<&std::path::Path>,
    output: &std::path::Path,
) -> anyhow::Result<()> {
    if output.exists() {
        anyhow::bail!(
            "{} exists: choose another name with -o, or remove it",
            output.display()
        );
    }
    let folder = output.parent().unwrap_or(std::path::Path::new(""));
    let text = mlsproj::pipeline::inspect::init_config(cloud, particles, folder)?;
    mlsproj::io::write_text(output, &text)?;
    println!(
        "wrote {}; check it with `mlsproj check {0}`, run it with `mlsproj run {0}`",
        output.display()
    );
    Ok(())
}

fn info(path: &std::path::Path) -> anyhow::Result<()> {
    let cloud = mlsproj::io::read_points(path)?;
    let d = mlsproj::pipeline::inspect::describe(&cloud)?;
    println!("{}: {} points", path.display(), d.points);
    if d.non_finite > 0 {
        println!("non-finite points: {}", d.non_finite);
    }
    if let Some((lo, hi)) = d.bounding_box {
        println!(
            "bounding box: [{}, {}, {}] .. [{}, {}, {}]",
            lo.x, lo.y, lo.z, hi.x, hi.y, hi.z
        );
    }
    println!("properties: {}", d.attributes.join(", "));
    if let Some(spacing) = d.mean_spacing {
        println!("mean nearest-neighbour spacing: {spacing:.6}");
    }
    for (k, radius) in d.suggested_radii {
        println!("support for about {k} neighbours: Radius({radius:.6})");
    }
    Ok(())
}
