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

/// The f64 brute force over `vectors` as given: each query's best `k` ids.
fn brute_force(
    vectors: &[f32],
    queries: &[f32],
    dim: usize,
    metric: Metric,
    k: usize,
) -> Vec<Vec<u32>> {
    let f = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    queries
        .chunks_exact(dim)
        .map(|q| {
            let q = f(q);
            let mut scored: Vec<(u32, f64)> = vectors
                .chunks_exact(dim)
                .enumerate()
                .map(|(i, v)| {
                    let v = f(v);
                    let dot: f64 = q.iter().zip(&v).map(|(a, b)| a * b).sum();
                    let score = match metric {
                        Metric::Cosine => dot / (norm(&q) * norm(&v)),
                        Metric::InnerProduct => dot,
                        Metric::L2 => -q
                            .iter()
                            .zip(&v)
                            .map(|(a, b)| (a - b) * (a - b))
                            .sum::<f64>(),
                    };
                    (i as u32, score)
                })
                .collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            scored.iter().take(k).map(|s| s.0).collect()
        })
        .collect()
}

#[test]
fn refinement_ranks_bf16_candidates_by_exact_scores() {
    let mut rng = Rng::new(31);
    let dim = 64;
    // Clustered, with neighbours closer together than bf16's rounding separates.
    let centres = normals(&mut rng, 20 * dim);
    let vectors: Vec<f32> = (0..4000 * dim)
        .map(|i| centres[(i / dim % 20) * dim + i % dim] + 0.15 * rng.normal())
        .collect();
    let queries: Vec<f32> = (0..12 * dim)
        .map(|i| centres[(i / dim % 20) * dim + i % dim] + 0.15 * rng.normal())
        .collect();
    let k = 10;
    for metric in [Metric::Cosine, Metric::InnerProduct, Metric::L2] {
        let want = brute_force(&vectors, &queries, dim, metric, k);
        for device in devices() {
            let config = IndexConfig::new(dim, metric).with_storage(Storage::Bf16);
            let mut plain = Index::on(&device, config).unwrap();
            plain.add(&vectors).unwrap();
            let mut refined = Index::on(&device, config)
                .unwrap()
                .with_refinement(8)
                .unwrap();
            assert_eq!(refined.refinement(), Some(8));
            // Added in two parts: the copies follow the index.
            refined.add(&vectors[..1000 * dim]).unwrap();
            refined.add(&vectors[1000 * dim..]).unwrap();
            let (got, rough) = (
                refined.search(&queries, k, None).unwrap(),
                plain.search(&queries, k, None).unwrap(),
            );
            let mut rough_found = 0;
            for (q, want) in want.iter().enumerate() {
                assert_eq!(got.ids(q), &want[..], "{metric:?} query {q}");
                rough_found += rough.ids(q).iter().filter(|id| want.contains(id)).count();
            }
            // The rounding alone loses neighbours on this data; refinement restores them.
            assert!(
                rough_found < 12 * k,
                "{metric:?}: bf16 alone found them all"
            );
            // A threshold cuts by the exact scores.
            let best = got.scores(0)[0];
            let cut = refined.search(&queries[..dim], k, Some(best)).unwrap();
            assert_eq!(cut.ids(0), &want[0][..1], "{metric:?}");
        }
    }
}

#[test]
fn refinement_settings_and_searches_check_their_input() {
    let dim = 8;
    let config = IndexConfig::new(dim, Metric::Cosine).with_storage(Storage::Bf16);
    for device in devices() {
        for factor in [0, 65] {
            assert!(matches!(
                Index::on(&device, config).unwrap().with_refinement(factor),
                Err(TesseraError::InvalidConfig { .. })
            ));
        }
        let mut index = Index::on(&device, config).unwrap();
        index.add(&[1.0; 16]).unwrap();
        assert!(matches!(
            index.with_refinement(4),
            Err(TesseraError::InvalidConfig { .. })
        ));
        let mut index = Index::on(&device, config)
            .unwrap()
            .with_refinement(4)
            .unwrap();
        index.add(&[1.0; 16]).unwrap();
        // A zero vector under cosine, a ragged batch: refused, nothing kept.
        assert!(index.add(&[0.0; 8]).is_err());
        assert!(index.add(&[1.0; 9]).is_err());
        assert_eq!(index.len(), 2);
        for k in [0, 3] {
            assert!(matches!(
                index.search(&[1.0; 8], k, None),
                Err(TesseraError::InvalidArgument { what: "k", .. })
            ));
        }
        assert!(index.search(&[f32::NAN; 8], 1, None).is_err());
        assert!(index.search(&[1.0; 8], 1, Some(f32::INFINITY)).is_err());
        let hits = index.search(&[1.0; 8], 2, None).unwrap();
        assert_eq!(hits.ids(0), &[0, 1]);
    }
}
