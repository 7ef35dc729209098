//! libfann 2.2 (float build), loaded at run time so the bench builds and runs without
//! it: the baseline for FANN training workloads.

use std::ffi::{CString, c_char, c_float, c_uint, c_void};
use std::path::Path;
use std::sync::Arc;

use libloading::Library;

/// The loaded library.
pub struct Libfann {
    lib: Library,
}

impl std::fmt::Debug for Libfann {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Libfann")
    }
}

/// A libfann network and training set, destroyed on drop.
pub struct FannRun {
    fann: Arc<Libfann>,
    ann: *mut c_void,
    data: *mut c_void,
}

impl Libfann {
    /// Loads `libfloatfann`, or `None` where it is not installed.
    pub fn load() -> Option<Self> {
        ["libfloatfann.so.2", "libfloatfann.so", "libfloatfann.dylib"]
            .into_iter()
            .find_map(|name| {
                // SAFETY: loading libfann runs no initialisation with preconditions.
                unsafe { Library::new(name) }.ok().map(|lib| Self { lib })
            })
    }

    /// Loads a `.net` file and a `.data` file (both written by tessera-nn).
    pub fn open(self: &Arc<Self>, net: &Path, data: &Path) -> Result<FannRun, String> {
        let c = |p: &Path| CString::new(p.to_string_lossy().as_bytes()).map_err(|e| e.to_string());
        let (net_c, data_c) = (c(net)?, c(data)?);
        // SAFETY: FANN 2.2's C API with its documented signatures, called with valid
        // NUL-terminated paths.
        unsafe {
            let create: libloading::Symbol<unsafe extern "C" fn(*const c_char) -> *mut c_void> =
                self.lib
                    .get(b"fann_create_from_file")
                    .map_err(|e| e.to_string())?;
            let read: libloading::Symbol<unsafe extern "C" fn(*const c_char) -> *mut c_void> = self
                .lib
                .get(b"fann_read_train_from_file")
                .map_err(|e| e.to_string())?;
            let ann = create(net_c.as_ptr());
            let data = read(data_c.as_ptr());
            if ann.is_null() || data.is_null() {
                return Err("libfann could not read the files tessera wrote".into());
            }
            Ok(FannRun {
                fann: self.clone(),
                ann,
                data,
            })
        }
    }
}

impl FannRun {
    /// One `fann_train_epoch` with the net's algorithm; returns libfann's MSE.
    pub fn train_epoch(&mut self) -> f32 {
        // SAFETY: `ann` and `data` are live objects created by this library.
        unsafe {
            let epoch: libloading::Symbol<
                unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_float,
            > = self
                .fann
                .lib
                .get(b"fann_train_epoch")
                .expect("libfann exports fann_train_epoch");
            epoch(self.ann, self.data)
        }
    }

    /// `fann_cascadetrain_on_data` with no reports; returns the hidden neurons
    /// installed and the bit-fail count of libfann's last output epoch. Stops on
    /// bit fails when `bit_stop` (FANN_STOPFUNC_BIT), else on the MSE.
    pub fn cascade(
        &mut self,
        max_neurons: c_uint,
        desired_error: c_float,
        bit_stop: bool,
    ) -> (u32, u32) {
        // SAFETY: as above; the symbols have FANN 2.2's signatures.
        unsafe {
            let lib = &self.fann.lib;
            let stop: libloading::Symbol<unsafe extern "C" fn(*mut c_void, c_uint)> = lib
                .get(b"fann_set_train_stop_function")
                .expect("libfann exports fann_set_train_stop_function");
            let train: libloading::Symbol<
                unsafe extern "C" fn(*mut c_void, *mut c_void, c_uint, c_uint, c_float),
            > = lib
                .get(b"fann_cascadetrain_on_data")
                .expect("libfann exports fann_cascadetrain_on_data");
            let neurons: libloading::Symbol<unsafe extern "C" fn(*mut c_void) -> c_uint> = lib
                .get(b"fann_get_total_neurons")
                .expect("libfann exports fann_get_total_neurons");
            let inputs: libloading::Symbol<unsafe extern "C" fn(*mut c_void) -> c_uint> = lib
                .get(b"fann_get_num_input")
                .expect("libfann exports fann_get_num_input");
            let outputs: libloading::Symbol<unsafe extern "C" fn(*mut c_void) -> c_uint> = lib
                .get(b"fann_get_num_output")
                .expect("libfann exports fann_get_num_output");
            let bit_fail: libloading::Symbol<unsafe extern "C" fn(*mut c_void) -> c_uint> = lib
                .get(b"fann_get_bit_fail")
                .expect("libfann exports fann_get_bit_fail");
            stop(self.ann, u32::from(bit_stop));
            train(self.ann, self.data, max_neurons, 0, desired_error);
            // Total neurons count the inputs, the bias and the outputs.
            let hidden = neurons(self.ann) - inputs(self.ann) - 1 - outputs(self.ann);
            (hidden, bit_fail(self.ann))
        }
    }

    /// Sets the training algorithm (FANN_TRAIN_RPROP = 2).
    pub fn set_algorithm(&mut self, algorithm: c_uint) {
        // SAFETY: as above.
        unsafe {
            let set: libloading::Symbol<unsafe extern "C" fn(*mut c_void, c_uint)> = self
                .fann
                .lib
                .get(b"fann_set_training_algorithm")
                .expect("libfann exports fann_set_training_algorithm");
            set(self.ann, algorithm);
        }
    }
}

impl Drop for FannRun {
    fn drop(&mut self) {
        // SAFETY: each object is destroyed once, by the library that made it.
        unsafe {
            if let Ok(d) = self
                .fann
                .lib
                .get::<unsafe extern "C" fn(*mut c_void)>(b"fann_destroy")
            {
                d(self.ann);
            }
            if let Ok(d) = self
                .fann
                .lib
                .get::<unsafe extern "C" fn(*mut c_void)>(b"fann_destroy_train")
            {
                d(self.data);
            }
        }
    }
}
