//! The similarity index gives the same results on every device through the facade,
//! and bf16 storage keeps almost all of the f32 neighbours.

use tessera::search::{Index, IndexConfig, Metric, Storage};
use tessera::{CpuDevice, Device, TesseraError};
use tessera_tensor::rng::Rng;

fn devices() -> Vec<Device> {
    let mut d = vec![Device::cpu(), Device::Cpu(CpuDevice::scalar())];
    if let Some(ctx) = tessera_gpu::testing::shared_context() {
        d.push(Device::from_context(ctx));
    }
    d
}

fn normals(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.normal()).collect()
}

#[test]
fn every_device_returns_the_same_neighbours() {
    let mut rng = Rng::new(21);
    let dim = 48;
    let vectors = normals(&mut rng, 3000 * dim);
    let queries = normals(&mut rng, 9 * dim);
    for metric in [Metric::Cosine, Metric::InnerProduct, Metric::L2] {
        let results: Vec<_> = devices()
            .iter()
            .map(|d| {
                let mut index = Index::on(d, IndexConfig::new(dim, metric)).unwrap();
                index.add(&vectors).unwrap();
                assert_eq!(index.len(), 3000);
                index.search(&queries, 10, None).unwrap()
            })
            .collect();
        for r in &results[1..] {
            for q in 0..9 {
                // Random data has no near-ties at this spacing: the ids agree exactly.
                assert_eq!(r.ids(q), results[0].ids(q), "{metric:?} query {q}");
                for (a, b) in r.scores(q).iter().zip(results[0].scores(q)) {
                    assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
                }
            }
        }
    }
}

#[test]
fn bf16_storage_keeps_the_f32_neighbours() {
    let mut rng = Rng::new(8);
    let dim = 96;
    // Clustered data, as embeddings are: neighbours are well separated from the rest.
    let centres = normals(&mut rng, 50 * dim);
    let vectors: Vec<f32> = (0..5000 * dim)
        .map(|i| centres[(i / dim % 50) * dim + i % dim] + 0.3 * rng.normal())
        .collect();
    let queries: Vec<f32> = (0..20 * dim)
        .map(|i| centres[(i / dim % 50) * dim + i % dim] + 0.3 * rng.normal())
        .collect();
    let device = Device::cpu();
    let mut f32_index = Index::on(&device, IndexConfig::new(dim, Metric::Cosine)).unwrap();
    let mut bf16_index = Index::on(
        &device,
        IndexConfig::new(dim, Metric::Cosine).with_storage(Storage::Bf16),
    )
    .unwrap();
    f32_index.add(&vectors).unwrap();
    bf16_index.add(&vectors).unwrap();
    let exact = f32_index.search(&queries, 10, None).unwrap();
    let approx = bf16_index.search(&queries, 10, None).unwrap();
    let found: usize = (0..20)
        .map(|q| {
            approx
                .ids(q)
                .iter()
                .filter(|id| exact.ids(q).contains(id))
                .count()
        })
        .sum();
    let recall = found as f64 / 200.0;
    assert!(recall >= 0.9, "recall@10 {recall}");
}

#[test]
fn bad_input_is_a_typed_error_on_every_device() {
    for device in devices() {
        let mut index = Index::on(&device, IndexConfig::new(2, Metric::Cosine)).unwrap();
        assert!(matches!(
            index.add(&[0.0, 0.0]),
            Err(TesseraError::InvalidArgument { .. })
        ));
        index.add(&[1.0, 0.0]).unwrap();
        assert!(matches!(
            index.search(&[1.0, 0.0], 2, None),
            Err(TesseraError::InvalidArgument { what: "k", .. })
        ));
        assert!(index.search(&[1.0], 1, None).is_err());
        assert_eq!(index.len(), 1);
    }
}
