//! seyaha-local's own tests, in one test binary: `binary` runs the built executable (start-up,
//! signals, restarts, file modes, the printed quickstart), `demo_supplier` the demo OCTO
//! supplier it serves.

mod binary;
mod demo_supplier;
