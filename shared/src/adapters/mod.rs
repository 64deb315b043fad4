//! Implementations of the ports, one family per cargo feature. Adapters build ports and
//! nothing else: the composition root (`app::build`) wires them into the service.

#[cfg(any(feature = "embedded", feature = "aws"))]
pub mod stored;

#[cfg(feature = "embedded")]
pub mod embedded;

#[cfg(feature = "aws")]
pub mod aws;
