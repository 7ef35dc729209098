//! tessera's exact top-k search beside faiss-cpu's flat index and NumPy, on the same
//! vectors in one run: `cargo run --release -p tessera-bench --example search_faiss
//! [N DIM QUERIES]` (default 100000 384 64). Needs `python3` with `faiss-cpu` and
//! `numpy` (`pip install faiss-cpu numpy`); without them only tessera is timed.

use std::time::Instant;

use tessera::Device;
use tessera::search::{Index, IndexConfig, Metric, Storage};
use tessera_bench::machine::MachineInfo;
use tessera_bench::search::embeddings;

const K: usize = 10;
const REPEATS: usize = 10;
/// Queries checked against an f64 brute force.
const EXACT_QUERIES: usize = 8;

/// Row-normalised copy (faiss's inner product on unit vectors is the cosine).
fn normalised(v: &[f32], dim: usize) -> Vec<f32> {
    v.chunks_exact(dim)
        .flat_map(|row| {
            let n = row.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
            row.iter().map(move |&x| (x as f64 / n) as f32)
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let (n, dim, q) = match args[..] {
        [n, dim, q] => (n, dim, q),
        [] => (100_000, 384, 64),
        _ => return Err("usage: search_faiss [N DIM QUERIES]".into()),
    };
    let machine = MachineInfo::current();
    println!(
        "# top-{K} of {q} queries over {n} x {dim} (cosine), best of {REPEATS}\n\
         # {} ({} threads; SIMD: {})",
        machine.cpu_model,
        machine.threads,
        machine.simd.join(", ")
    );
    let vectors = normalised(&embeddings(n, dim, 1), dim);
    let queries = normalised(&embeddings(q, dim, 2), dim);
    let exact = exact_top(&vectors, &queries[..dim * q.min(EXACT_QUERIES)], dim);
    let mut tessera_ids = Vec::new();
    for storage in [Storage::F32, Storage::Bf16] {
        let mut index = Index::on(
            &Device::cpu(),
            IndexConfig::new(dim, Metric::Cosine).with_storage(storage),
        )?;
        index.add(&vectors)?;
        let mut best = f64::INFINITY;
        let mut hits = index.search(&queries, K, None)?;
        for _ in 0..REPEATS {
            let t = Instant::now();
            hits = index.search(&queries, K, None)?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        let ids: Vec<Vec<u32>> = (0..q).map(|i| hits.ids(i).to_vec()).collect();
        let agreement = if tessera_ids.is_empty() {
            String::new()
        } else {
            format!(", recall@{K} vs f32 {:.4}", overlap(&ids, &tessera_ids))
        };
        println!(
            "tessera CPU {storage:?}: {:.2} ms{agreement}, ids agree with f64 {:.4}",
            best * 1e3,
            overlap(&ids[..exact.len()], &exact)
        );
        if tessera_ids.is_empty() {
            tessera_ids = ids;
        }
    }
    let dir = std::env::temp_dir().join(format!("tessera-faiss-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let raw = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    std::fs::write(dir.join("vectors.f32"), raw(&vectors))?;
    std::fs::write(dir.join("queries.f32"), raw(&queries))?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../benches/faiss_flat.py");
    let output = std::process::Command::new("python3")
        .arg(script)
        .arg(&dir)
        .args([n, dim, q, K, REPEATS].map(|x| x.to_string()))
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("OPENBLAS_L2_SIZE")
        .output();
    std::fs::remove_dir_all(&dir).ok();
    match output {
        Ok(out) if out.status.success() => {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let v: serde_json::Value = serde_json::from_str(line)?;
                let ids: Vec<Vec<u32>> = serde_json::from_value(v["ids"].clone())?;
                println!(
                    "{} {} ({} threads): {:.2} ms, ids agree with tessera f32 {:.4}, with f64 {:.4}",
                    v["name"].as_str().unwrap_or("?"),
                    v["version"].as_str().unwrap_or("?"),
                    v["threads"],
                    v["seconds"].as_f64().unwrap_or(f64::NAN) * 1e3,
                    overlap(&ids, &tessera_ids),
                    overlap(&ids[..exact.len()], &exact)
                );
            }
        }
        Ok(out) => println!(
            "faiss not timed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ),
        Err(e) => println!("faiss not timed: python3 not found ({e})"),
    }
    Ok(())
}

/// The top-K ids of each query by an f64 brute force (ties to the lower id).
fn exact_top(vectors: &[f32], queries: &[f32], dim: usize) -> Vec<Vec<u32>> {
    use rayon::prelude::*;
    queries
        .chunks_exact(dim)
        .map(|q| {
            let mut scored: Vec<(f64, u32)> = vectors
                .par_chunks_exact(dim)
                .enumerate()
                .map(|(i, x)| {
                    let s: f64 = x.iter().zip(q).map(|(&a, &b)| a as f64 * b as f64).sum();
                    (s, i as u32)
                })
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            scored[..K].iter().map(|&(_, i)| i).collect()
        })
        .collect()
}

/// Fraction of `want`'s ids that `got` returns too.
fn overlap(got: &[Vec<u32>], want: &[Vec<u32>]) -> f64 {
    let found: usize = got
        .iter()
        .zip(want)
        .map(|(g, w)| g.iter().filter(|id| w.contains(id)).count())
        .sum();
    found as f64 / want.iter().map(Vec::len).sum::<usize>().max(1) as f64
}
