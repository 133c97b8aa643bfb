//! Parameter sweeps: a base config, fixed overrides and varied axes expanded into points,
//! each point a full run with a stable id and a deterministic seed.
//!
//! A sweep file (TOML) looks like
//!
//! ```toml
//! base = "staircase"            # a preset, or: base_file = "my.toml" (relative to this file)
//! seed = 0                      # sweep seed: per-point seeds derive from it and the point id
//! unset = ["reference"]         # keys or tables removed from the base
//! [set]                         # fixed overrides (dotted keys; tables are merged)
//! "train.t_max" = 40.0
//! [grid]                        # cartesian product, first key varies slowest
//! "model.init_scale" = [1e-6, 1e-4]
//! "model.width" = [4, 8]
//! [zip]                         # lists of equal length varied together (one axis)
//! "train.lr" = [0.1, 0.01]
//! "train.t_max" = [10.0, 100.0]
//! [random]                      # K random samples (one axis)
//! samples = 20
//! "model.init_scale" = { log_uniform = [1e-6, 1e-1] }
//! [report]                      # defaults of `featlab report` for this sweep
//! z = ["final_loss"]
//! x = "model.init_scale"
//! y = "model.width"
//! [save]                        # what each point keeps besides its summary (see [`save`])
//! trajectory = true
//! params = { every = 100 }
//! ```
//!
//! Modules: [`spec`] parses the file, [`points`] expands it into [`points::Point`]s with
//! ids and seeds, [`shard`] splits the points among cluster tasks, [`results`] flattens run
//! summaries into the rows of `results.csv`, [`save`] decides what each point keeps. Running points and writing files is the CLI's
//! job (`featlab sweep`).

pub mod points;
pub mod results;
pub mod save;
pub mod shard;
pub mod spec;
pub mod table;

pub use points::Point;
pub use shard::Shard;
pub use spec::SweepSpec;
