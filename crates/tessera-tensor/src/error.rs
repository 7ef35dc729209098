//! The one error type shared by every tessera crate.

use thiserror::Error;

/// Everything that can go wrong in tessera. Every variant says what was wrong and what
/// was expected; an operation that returns an error leaves its state unchanged.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum TesseraError {
    /// A configuration value is outside its allowed range.
    #[error("invalid configuration: {field} = {value}, expected {expected}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// The value that was given, rendered as text.
        value: String,
        /// The allowed range or form.
        expected: String,
    },
    /// An input buffer has the wrong number of elements.
    #[error("shape mismatch for `{what}`: got {got} elements, expected {expected}")]
    ShapeMismatch {
        /// The input that was wrong.
        what: &'static str,
        /// Its length.
        got: usize,
        /// The length the state's shape requires.
        expected: usize,
    },
    /// An index is out of range.
    #[error("index out of range for `{what}`: {index} is not below {bound}")]
    IndexOutOfRange {
        /// What was indexed.
        what: &'static str,
        /// The index that was given.
        index: usize,
        /// The exclusive upper bound.
        bound: usize,
    },
    /// An input holds NaN or an infinity where finite values are required.
    #[error("non-finite input in `{what}` at element {index}: {value}")]
    NonFinite {
        /// The input that was wrong.
        what: &'static str,
        /// The first offending element.
        index: usize,
        /// Its value.
        value: f32,
    },
    /// A finite input is larger in magnitude than a kernel can take without
    /// overflowing `f32` arithmetic.
    #[error("input `{what}` at element {index} is {value}, beyond the limit of +-{limit}")]
    TooLarge {
        /// The input that was wrong.
        what: &'static str,
        /// The first offending element.
        index: usize,
        /// Its value.
        value: f32,
        /// The largest magnitude accepted.
        limit: f32,
    },
    /// A state handed in from outside (a checkpoint) breaks one of its invariants.
    #[error("invalid state: `{field}` of environment {env}: {message}")]
    InvalidState {
        /// The field that is wrong.
        field: &'static str,
        /// The environment it belongs to.
        env: usize,
        /// What was wrong and what was expected.
        message: String,
    },
    /// A scalar argument is outside its allowed range.
    #[error("invalid argument `{what}` = {value}, expected {expected}")]
    InvalidArgument {
        /// The argument.
        what: &'static str,
        /// Its value.
        value: f64,
        /// The allowed range.
        expected: &'static str,
    },
    /// The work does not fit the device's limits (buffer size, bindings, workgroups).
    #[error("device limit exceeded: {what} needs {needed}, the device allows {limit}")]
    DeviceLimit {
        /// The limit that was hit.
        what: &'static str,
        /// What the work needs.
        needed: u64,
        /// What the device allows.
        limit: u64,
    },
    /// A file is malformed.
    #[error("{file}:{line}: {message}")]
    Format {
        /// The file (or a description of the source).
        file: String,
        /// 1-based line number.
        line: usize,
        /// What was wrong and what was expected.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("I/O error on {file}: {message}")]
    Io {
        /// The file.
        file: String,
        /// The OS error.
        message: String,
    },
    /// A computation on finite inputs produced NaN or an infinity (training that
    /// diverged), or a result its precision cannot resolve (the GPU posterior).
    #[error("{what}: a non-finite or unresolvable result ({value}) at step {step}")]
    Diverged {
        /// The quantity that became non-finite.
        what: &'static str,
        /// The step, epoch or iteration (from 1) at which it was seen; 0 outside an
        /// iteration (a forward pass).
        step: usize,
        /// Its value.
        value: f64,
    },
    /// No GPU adapter could be found or opened.
    #[error("no GPU adapter available: {0}")]
    NoAdapter(String),
    /// The GPU device was lost or a GPU operation failed.
    #[error("GPU device error: {0}")]
    Device(String),
}

/// Shorthand for results carrying a [`TesseraError`].
pub type Result<T, E = TesseraError> = std::result::Result<T, E>;

/// The float types the finiteness check reads.
trait Float: Copy {
    fn finite(self) -> bool;
    /// The value as an error reports it.
    fn reported(self) -> f32;
}

impl Float for f32 {
    fn finite(self) -> bool {
        self.is_finite()
    }
    fn reported(self) -> f32 {
        self
    }
}

impl Float for f64 {
    fn finite(self) -> bool {
        self.is_finite()
    }
    fn reported(self) -> f32 {
        self as f32
    }
}

/// The body of [`check_finite`] and [`check_finite_f64`].
fn check_finite_values<T: Float>(what: &'static str, data: &[T]) -> Result<()> {
    // A branch-free pass per chunk vectorises; the index is looked for only on failure.
    if data
        .chunks(64)
        .all(|c| c.iter().fold(true, |ok, v| ok & v.finite()))
    {
        return Ok(());
    }
    match data.iter().position(|v| !v.finite()) {
        Some(index) => Err(TesseraError::NonFinite {
            what,
            index,
            value: data[index].reported(),
        }),
        None => Ok(()),
    }
}

/// Returns an error naming the first non-finite element of `data`, if any.
pub fn check_finite(what: &'static str, data: &[f32]) -> Result<()> {
    check_finite_values(what, data)
}

/// [`check_finite`] over f64 data (the error reports the value rounded to f32).
pub fn check_finite_f64(what: &'static str, data: &[f64]) -> Result<()> {
    check_finite_values(what, data)
}

/// A network's outputs computed from finite inputs: a non-finite one means the net's
/// arithmetic overflowed, reported as [`TesseraError::Diverged`] with its value.
pub fn check_network_outputs(outputs: &[f32]) -> Result<()> {
    match outputs.iter().find(|v| !v.is_finite()) {
        Some(&value) => Err(TesseraError::Diverged {
            what: "network outputs",
            step: 0,
            value: value as f64,
        }),
        None => Ok(()),
    }
}

/// Returns an error naming the first element of `data` that is non-finite or larger
/// in magnitude than `limit`, if any.
pub fn check_magnitude(what: &'static str, data: &[f32], limit: f32) -> Result<()> {
    // One branch-free pass: `|v| <= limit` is false for NaN and the infinities too.
    if data
        .chunks(64)
        .all(|c| c.iter().fold(true, |ok, v| ok & (v.abs() <= limit)))
    {
        return Ok(());
    }
    match data.iter().position(|v| !v.is_finite() || v.abs() > limit) {
        Some(index) if !data[index].is_finite() => Err(TesseraError::NonFinite {
            what,
            index,
            value: data[index],
        }),
        Some(index) => Err(TesseraError::TooLarge {
            what,
            index,
            value: data[index],
            limit,
        }),
        None => Ok(()),
    }
}

/// Returns an error unless `data` holds exactly `expected` elements.
pub fn check_len<T>(what: &'static str, data: &[T], expected: usize) -> Result<()> {
    if data.len() == expected {
        Ok(())
    } else {
        Err(TesseraError::ShapeMismatch {
            what,
            got: data.len(),
            expected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_finite_f64_names_the_first_non_finite_value_past_the_fast_path() {
        let mut data = vec![1.0e300; 200];
        assert!(check_finite_f64("data", &data).is_ok());
        data[130] = f64::NEG_INFINITY;
        data[150] = f64::NAN;
        match check_finite_f64("data", &data) {
            Err(TesseraError::NonFinite { what, index, value }) => {
                assert_eq!((what, index, value), ("data", 130, f32::NEG_INFINITY));
            }
            other => panic!("{other:?}"),
        }
        assert!(check_finite_f64("data", &[]).is_ok());
    }
}
