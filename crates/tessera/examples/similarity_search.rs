//! Exact top-k search: build an index of embeddings on the best device, search it,
//! cut by a threshold, find near-duplicates, and compare bf16 storage with f32.
//!
//! `cargo run --release -p tessera --example similarity_search`

use std::time::Instant;

use tessera::Device;
use tessera::search::{Hits, Index, IndexConfig, Metric, Storage};
use tessera_tensor::rng::Rng;

fn main() -> Result<(), tessera::TesseraError> {
    let (n, dim) = (50_000, 384);
    let mut rng = Rng::new(7);
    // Synthetic embeddings: 500 topics, each document a noisy copy of its topic.
    let topics: Vec<f32> = (0..500 * dim).map(|_| rng.normal()).collect();
    let mut docs = Vec::with_capacity(n * dim);
    for i in 0..n {
        let t = i % 500;
        docs.extend((0..dim).map(|j| topics[t * dim + j] + 0.6 * rng.normal()));
    }
    // Document 1234 appears twice, slightly perturbed: a near-duplicate to find.
    let copy: Vec<f32> = docs[1234 * dim..1235 * dim]
        .iter()
        .map(|v| v + 1e-3)
        .collect();
    docs.extend(&copy);

    let device = Device::new_blocking();
    println!("device: {}", device.describe());
    let mut index = Index::on(&device, IndexConfig::new(dim, Metric::Cosine))?;
    let t = Instant::now();
    index.add(&docs)?;
    println!(
        "indexed {} vectors of {dim} in {:.1?}",
        index.len(),
        t.elapsed()
    );

    // Five queries near topics 0..5.
    let queries: Vec<f32> = (0..5 * dim)
        .map(|i| topics[i] + 0.6 * rng.normal())
        .collect();
    let t = Instant::now();
    let hits = index.search(&queries, 5, None)?;
    println!("top-5 of 5 queries in {:.1?}", t.elapsed());
    for q in 0..hits.queries() {
        println!(
            "  query {q}: ids {:?} scores {:.3?}",
            hits.ids(q),
            hits.scores(q)
        );
    }

    // Only matches at least this similar.
    let close = index.search(&queries[..dim], 1024, Some(0.7))?;
    println!(
        "query 0 has {} matches with cosine >= 0.7",
        close.ids(0).len()
    );

    // Near-duplicates of document 1234: itself, and its copy at the end.
    let dupes = index.search(&docs[1234 * dim..1235 * dim], 10, Some(0.9999))?;
    println!("near-duplicates of document 1234: {:?}", dupes.ids(0));

    // bf16 storage: half the bytes; queries and vectors rounded, sums in f32.
    let mut small = Index::on(
        &device,
        IndexConfig::new(dim, Metric::Cosine).with_storage(Storage::Bf16),
    )?;
    small.add(&docs)?;
    // How many of the f32 index's 25 neighbours another index returns.
    let shared = |other: &Hits| -> usize {
        (0..5)
            .map(|q| {
                other
                    .ids(q)
                    .iter()
                    .filter(|id| hits.ids(q).contains(id))
                    .count()
            })
            .sum()
    };
    let approx = small.search(&queries, 5, None)?;
    println!(
        "bf16 storage returns {} of the 25 f32 neighbours",
        shared(&approx)
    );

    // Refined: the bf16 search's best 2·k candidates reranked exactly from f32 copies
    // kept on the host.
    let mut refined = Index::on(
        &device,
        IndexConfig::new(dim, Metric::Cosine).with_storage(Storage::Bf16),
    )?
    .with_refinement(2)?;
    refined.add(&docs)?;
    let exact = refined.search(&queries, 5, None)?;
    println!(
        "refined bf16 storage returns {} of the 25 f32 neighbours",
        shared(&exact)
    );
    Ok(())
}
