//! OpenBLAS, loaded at run time so the bench builds and runs without it: the
//! baseline for the CPU SGEMM. The core type it dispatched to (`Haswell`,
//! `SkylakeX`, `Cooperlake`, ...) is part of its name in the report.

use std::ffi::{CStr, c_char, c_float, c_int};

use libloading::Library;

/// `cblas_sgemm`'s signature.
type Sgemm = unsafe extern "C" fn(
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    c_float,
    *const c_float,
    c_int,
    *const c_float,
    c_int,
    c_float,
    *mut c_float,
    c_int,
);

/// `CblasRowMajor` and `CblasNoTrans`.
const ROW_MAJOR: c_int = 101;
const NO_TRANS: c_int = 111;

/// The loaded library.
pub struct OpenBlas {
    sgemm: Sgemm,
    /// The kernels OpenBLAS chose for this CPU, and its build.
    pub description: String,
    _lib: Library,
}

impl std::fmt::Debug for OpenBlas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl OpenBlas {
    /// Loads `libopenblas` (Debian's `libopenblas0-pthread`, Homebrew's `openblas`)
    /// with as many threads as tessera uses, or `None` where it is not installed.
    pub fn load() -> Option<Self> {
        let lib = ["libopenblas.so.0", "libopenblas.so", "libopenblas.dylib"]
            .into_iter()
            // SAFETY: loading OpenBLAS runs its CPU detection, which has no
            // preconditions.
            .find_map(|name| unsafe { Library::new(name) }.ok())?;
        // SAFETY: the documented OpenBLAS entry points with their C signatures; the
        // strings they return are static and NUL-terminated.
        unsafe {
            let sgemm: Sgemm = *lib.get::<Sgemm>(b"cblas_sgemm").ok()?;
            let text = |symbol: &[u8]| -> String {
                lib.get::<unsafe extern "C" fn() -> *const c_char>(symbol)
                    .ok()
                    .map(|f| f())
                    .filter(|p| !p.is_null())
                    .map(|p| CStr::from_ptr(p).to_string_lossy().trim().to_owned())
                    .unwrap_or_default()
            };
            let core = text(b"openblas_get_corename");
            let config = text(b"openblas_get_config");
            let version = config.split_whitespace().nth(1).unwrap_or("?").to_owned();
            if let Ok(set) = lib.get::<unsafe extern "C" fn(c_int)>(b"openblas_set_num_threads") {
                let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
                set(threads as c_int);
            }
            Some(Self {
                sgemm,
                description: format!("OpenBLAS {version} ({core} kernels)"),
                _lib: lib,
            })
        }
    }

    /// `C = A B` for row-major `n × n` matrices.
    pub fn sgemm_square(&self, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
        assert!(a.len() >= n * n && b.len() >= n * n && c.len() >= n * n);
        let n = n as c_int;
        // SAFETY: the three buffers hold n x n floats each (asserted), row-major with
        // leading dimension n, and `c` is borrowed mutably, so it aliases neither input.
        unsafe {
            (self.sgemm)(
                ROW_MAJOR,
                NO_TRANS,
                NO_TRANS,
                n,
                n,
                n,
                1.0,
                a.as_ptr(),
                n,
                b.as_ptr(),
                n,
                0.0,
                c.as_mut_ptr(),
                n,
            );
        }
    }
}
