"""The application layer: the contract's operations with no HTTP in them (what /fit, /load,
/predict and the rest do), the versions of a name and the moves of its pointers, and the
catalog of what exists and in which state. Routes and the dashboard call it; it composes
training, inference and the store."""
