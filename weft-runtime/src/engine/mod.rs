//! The engine: drives workflows through their steps, persists every transition, and recovers.
