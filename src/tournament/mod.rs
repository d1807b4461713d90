//! Tournaments: strategies × scenarios × repetitions, with role rotation.
