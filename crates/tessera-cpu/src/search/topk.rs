//! A running top-k of one query: candidates collected in a buffer of up to `2k` and
//! cut back to the best `k` when it fills, so an insert costs O(1) amortised and the
//! `floor` (the k-th best so far) lets the tile loop drop almost every score unseen.

use tessera_tensor::search::Candidate;

#[derive(Debug, Clone)]
pub(crate) struct TopK {
    k: usize,
    buffer: Vec<Candidate>,
    /// No candidate at or behind this one can enter the top k.
    floor: Candidate,
}

impl TopK {
    /// A top-k that keeps only keys at least `floor_key`.
    pub(crate) fn new(k: usize, floor_key: f32) -> Self {
        Self {
            k,
            // Grown on demand: most queries keep far fewer than 2k candidates per
            // worker, and k may be 1024 for a thousand queries.
            buffer: Vec::new(),
            floor: Candidate {
                key: floor_key,
                id: u32::MAX,
            },
        }
    }

    /// Keys below this can be dropped without a call to [`TopK::insert`].
    #[inline(always)]
    pub(crate) fn floor_key(&self) -> f32 {
        self.floor.key
    }

    #[inline]
    pub(crate) fn insert(&mut self, key: f32, id: u32) {
        let c = Candidate { key, id };
        if c.better(&self.floor) {
            self.buffer.push(c);
            if self.buffer.len() >= 2 * self.k {
                self.cut();
            }
        }
    }

    fn cut(&mut self) {
        let k = self.k;
        self.buffer.select_nth_unstable_by(k - 1, Candidate::order);
        self.buffer.truncate(k);
        self.floor = self.buffer[k - 1];
    }

    /// Adds another query's candidates (the same query on another thread).
    pub(crate) fn merge(&mut self, other: &TopK) {
        for c in &other.buffer {
            self.insert(c.key, c.id);
        }
    }

    /// The candidates, in no order (the caller sorts the best `k`).
    pub(crate) fn candidates(&mut self) -> &mut [Candidate] {
        &mut self.buffer
    }
}
