//! A network resident on a backend: weights as backend tensors, plus activations
//! and gradients sized for a batch.

use tessera_tensor::error::Result;
use tessera_tensor::nn::NnKernels;
use tessera_tensor::nn::dense::{DenseLayerRef, forward_per_layer};

use crate::data::check_input_rows;
use crate::network::{Layer, Network};

/// One layer's tensors.
pub(crate) struct DeviceLayer<K: NnKernels> {
    pub spec: Layer,
    pub w: K::Tensor,
    pub b: K::Tensor,
}

/// Per-batch buffers: the input, each layer's sums and activations, and the
/// backward pass's gradients.
pub(crate) struct Workspace<K: NnKernels> {
    pub rows: usize,
    /// The [`TrainData`](crate::TrainData) whose samples, all of them in order, `x`
    /// and `target` hold (`None` after anything else was written there).
    pub samples: Option<u64>,
    pub x: K::Tensor,
    pub target: K::Tensor,
    pub z: Vec<K::Tensor>,
    pub a: Vec<K::Tensor>,
    pub dz: Vec<K::Tensor>,
    pub da: Vec<K::Tensor>,
}

/// A [`Network`] uploaded to a backend (`CpuNn`, `GpuNn`, or the f64 reference).
pub struct Model<K: NnKernels> {
    pub(crate) kernels: K,
    pub(crate) layers: Vec<DeviceLayer<K>>,
    pub(crate) work: Option<Workspace<K>>,
}

impl<K: NnKernels> std::fmt::Debug for Model<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sizes: Vec<_> = self
            .layers
            .iter()
            .map(|l| (l.spec.inputs, l.spec.outputs))
            .collect();
        f.debug_struct("Model").field("layers", &sizes).finish()
    }
}

impl<K: NnKernels> Model<K> {
    /// Uploads `net` to `kernels`' backend. Fails, with nothing uploaded, on a network
    /// that [`Network::validate`] rejects (empty, mis-shaped or non-finite).
    pub fn new(kernels: K, net: &Network) -> Result<Self> {
        let layers = Self::upload(&kernels, net)?;
        Ok(Self {
            kernels,
            layers,
            work: None,
        })
    }

    /// `net`'s layers as backend tensors, after [`Network::validate`].
    pub(crate) fn upload(kernels: &K, net: &Network) -> Result<Vec<DeviceLayer<K>>> {
        net.validate()?;
        net.layers
            .iter()
            .map(|l| {
                Ok(DeviceLayer {
                    spec: l.clone(),
                    w: kernels.tensor(&l.weights)?,
                    b: kernels.tensor(&l.bias)?,
                })
            })
            .collect()
    }

    /// The backend's kernels.
    pub fn kernels(&self) -> &K {
        &self.kernels
    }

    /// Ends the model and returns its backend (to train another net on it).
    pub fn into_kernels(self) -> K {
        self.kernels
    }

    /// Number of inputs.
    pub fn inputs(&self) -> usize {
        self.layers[0].spec.inputs
    }

    /// Number of outputs.
    pub fn outputs(&self) -> usize {
        self.layers[self.layers.len() - 1].spec.outputs
    }

    /// Copies the weights back into a host [`Network`].
    pub fn to_network(&self) -> Result<Network> {
        let layers = self
            .layers
            .iter()
            .map(|l| {
                Ok(Layer {
                    weights: self.kernels.read(&l.w)?,
                    bias: self.kernels.read(&l.b)?,
                    ..l.spec.clone()
                })
            })
            .collect::<Result<_>>()?;
        Ok(Network { layers })
    }

    /// The weight tensor of layer `l` (e.g. to perturb it in a gradient check).
    pub fn weights_mut(&mut self, l: usize) -> &mut K::Tensor {
        &mut self.layers[l].w
    }

    /// (Re)allocates the workspace for `rows` samples per batch.
    pub(crate) fn ensure_workspace(&mut self, rows: usize) -> Result<()> {
        if self.work.as_ref().is_some_and(|w| w.rows == rows) {
            return Ok(());
        }
        let k = &self.kernels;
        let per_layer = |f: &dyn Fn(&DeviceLayer<K>) -> usize| -> Result<Vec<K::Tensor>> {
            self.layers.iter().map(|l| k.zeros(rows * f(l))).collect()
        };
        self.work = Some(Workspace {
            rows,
            samples: None,
            x: k.zeros(rows * self.inputs())?,
            target: k.zeros(rows * self.outputs())?,
            z: per_layer(&|l| l.spec.outputs)?,
            a: per_layer(&|l| l.spec.outputs)?,
            dz: per_layer(&|l| l.spec.outputs)?,
            da: per_layer(&|l| l.spec.outputs)?,
        });
        Ok(())
    }

    /// The layers as the dense kernels read them.
    pub(crate) fn dense_layers(layers: &[DeviceLayer<K>]) -> Vec<DenseLayerRef<'_, K::Tensor>> {
        layers
            .iter()
            .map(|l| DenseLayerRef {
                w: &l.w,
                b: &l.b,
                inputs: l.spec.inputs,
                outputs: l.spec.outputs,
                activation: l.spec.activation,
                steepness: l.spec.steepness,
            })
            .collect()
    }

    /// Runs the forward pass on the workspace's input (already written).
    pub(crate) fn forward_workspace(&mut self) -> Result<()> {
        let work = self.work.as_mut().expect("workspace allocated");
        let layers = Self::dense_layers(&self.layers);
        forward_per_layer(
            &self.kernels,
            &layers,
            &work.x,
            work.rows,
            &mut work.z,
            &mut work.a,
        )
    }

    /// Outputs for `inputs` (`[rows, inputs]` row-major), `[rows, outputs]`. Finite
    /// inputs large enough to overflow the net's arithmetic give
    /// [`TesseraError::Diverged`](tessera_tensor::TesseraError::Diverged), never NaN or infinite outputs.
    pub fn forward(&mut self, inputs: &[f32]) -> Result<Vec<f32>> {
        self.forward_on_device(inputs)?;
        let work = self.work.as_ref().expect("workspace allocated");
        let out = self.kernels.read(&work.a[self.layers.len() - 1])?;
        tessera_tensor::error::check_network_outputs(&out)?;
        Ok(out)
    }

    /// The output tensor of the last forward pass, if one ran.
    pub(crate) fn output_tensor(&self) -> Option<&K::Tensor> {
        self.work.as_ref().map(|w| &w.a[self.layers.len() - 1])
    }

    /// Runs the forward pass and returns the output tensor without reading it back.
    pub fn forward_on_device(&mut self, inputs: &[f32]) -> Result<&K::Tensor> {
        let rows = check_input_rows("inputs", inputs, self.inputs())?;
        self.ensure_workspace(rows)?;
        let work = self.work.as_mut().expect("workspace allocated");
        work.samples = None;
        self.kernels.write(&mut work.x, inputs)?;
        self.forward_workspace()?;
        let work = self.work.as_ref().expect("workspace allocated");
        Ok(&work.a[self.layers.len() - 1])
    }
}
