//! Backend choice shared by the examples: `--gpu` runs on the first wgpu adapter,
//! otherwise the CPU.

use tessera_nn::TrainData;
use tessera_tensor::Result;
use tessera_tensor::nn::NnKernels;

/// A problem an example runs on whichever backend it is given.
pub trait Problem {
    /// Trains and reports, on backend `k`.
    fn run<K: NnKernels>(&self, k: K, data: &TrainData) -> Result<()>;
}

/// Runs `problem` on the backend the command line asks for.
pub fn main_with(problem: impl Problem, data: TrainData) -> Result<()> {
    if std::env::args().any(|a| a == "--gpu") {
        let ctx = tessera_gpu::GpuContext::new_blocking()?;
        println!(
            "backend: {} ({:?})",
            ctx.adapter_info().name,
            ctx.adapter_info().backend
        );
        problem.run(tessera_gpu::GpuNn::new(&ctx)?, &data)
    } else {
        println!("backend: CPU (pass --gpu for the GPU)");
        problem.run(tessera_cpu::CpuNn::new(), &data)
    }
}
