#![warn(missing_docs)]
//! mlsproj: project particles onto the Moving Least Squares surface of a
//! scanned point cloud, fast.
//!
//! The flow is one way: [`config`] → [`io`] (read) → [`neighbours`] →
//! [`normals`] (for a cloud without them) → `fit` → [`projection`] →
//! [`io`] (write), strung together by
//! [`pipeline`]. A caller that has points in memory can skip the files:
//!
//! ```
//! use mlsproj::{Config, MlsSurface, Method, PointCloud};
//! use mlsproj::config::{Orientation, Particles, Support};
//! use nalgebra::Point3;
//!
//! // A small patch of the plane z = 0.
//! let mut cloud = PointCloud::default();
//! for i in 0..20 {
//!     for j in 0..20 {
//!         cloud.positions.push(Point3::new(i as f64 * 0.1, j as f64 * 0.1, 0.0));
//!     }
//! }
//! let config = Config::parse(
//!     r#"(cloud: "c.ply", particles: File("p.ply"), output: "o.ply", support: Radius(0.35))"#,
//! ).unwrap();
//! let surface = MlsSurface::new(&cloud).unwrap();
//! let projector = surface.projector(Method::from(&config), Orientation::Auto, false);
//! let moved = mlsproj::project_all(&projector, &[Point3::new(1.0, 1.0, 0.05)]);
//! assert!(moved[0].position.z.abs() < 1e-9);
//! ```

pub mod cloud;
pub mod config;
mod cpu;
pub mod error;
mod fit;
pub mod io;
pub mod least_squares;
pub mod neighbours;
pub mod normals;
mod order;
pub mod pipeline;
pub mod projection;
pub mod render;
pub mod status;
pub mod surface;

pub use cloud::{Attribute, Column, PointCloud, Precision, ScalarKind};
pub use config::Config;
pub use error::{Error, Location, Result};
pub use pipeline::{RunOptions, Summary, project_all, run, run_with};
pub use projection::{Method, Projected, Projector};
pub use status::Status;
pub use surface::MlsSurface;
