//! The `mlsproj` command: parse the command line, call the library, report.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use mlsproj::config::Config;
use mlsproj::pipeline::Tile;
use mlsproj::pipeline::inspect::Spread;
use mlsproj::{RunOptions, Status};

/// Project particles onto the Moving Least Squares surface of a point cloud.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the job of a RON config: read, project every particle, write the
    /// output PLY, and print counts per status and time per stage.
    Run {
        /// The job's RON config; paths inside are relative to its folder.
        config: PathBuf,
        /// Project only tile I of N (0-based, N at most 65536): the
        /// particles in the I-th of N slabs along the longest axis of their
        /// bounding box, cut to hold about equal numbers of particles, with
        /// only the part of the cloud they need. Writes OUTPUT with
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
    /// Join the outputs of `run --tile 0/N` … `run --tile N-1/N` into the
    /// config's output, in input order.
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
    /// Describe a point file: point count, bounding box, properties, mean
    /// nearest-neighbour spacing and support radii for about 30/100/300
    /// neighbours.
    Info {
        /// A PLY or text (.xyz .pts .txt .csv) point file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
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
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mlsproj: error: {error:#}");
            ExitCode::FAILURE
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

fn try_main(cli: Cli) -> anyhow::Result<()> {
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
                "merged {} tiles{passes}, {} particles, into {}",
                summary.tiles,
                summary.particles,
                summary.output.display()
            );
            Ok(())
        }
        Command::Check { config } => check(&load(&config)?),
        Command::Info { file } => info(&file),
    }
}

fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    Config::load(path).context("invalid config")
}

/// Progress bars unless asked for quiet or stderr is not a terminal.
fn show_progress(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

fn run(config: &Config, options: &RunOptions) -> anyhow::Result<()> {
    let summary = mlsproj::run_with(config, options)?;
    println!(
        "cloud: {} points{}",
        summary.cloud_points,
        cloud_note(summary.skipped_cloud_points, summary.duplicate_cloud_points)
    );
    println!("particles: {}", summary.particles);
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
    Ok(())
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
    println!(
        "particles: {} ({} invalid)",
        report.particles, report.invalid_particles
    );
    println!(
        "support: {:?}, weight {:?}, degree {}, {:?} projection, up to {} step(s)",
        config.support, config.weight, config.degree, config.projection, config.iterations
    );
    if let (Some(counts), Some(radii)) = (report.neighbour_counts, report.support_radii) {
        let Spread { min, median, max } = counts;
        println!("neighbours on a sample of particles: min {min}, median {median}, max {max}");
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
