//! The type parameter of a store: which storage tier its blocks live in.

/// The storage tier a manager's blocks live in, as a marker type.
///
/// Implemented for every `Clone + Send + Sync + 'static` type; a unit struct
/// per tier (`struct Device;`) is the usual choice.
pub trait BlockMetadata: Clone + Send + Sync + 'static {}
impl<T: Clone + Send + Sync + 'static> BlockMetadata for T {}
