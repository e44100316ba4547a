//! RFC 6962 / RFC 9162 Merkle tree math for the append-only log.
//!
//! The tree over `n` leaves is the one RFC 9162 §2.1.1 defines (MTH): split
//! at the largest power of two below `n`, recursively. Storage never holds
//! that tree as such. It holds every *complete* node, that is every perfect
//! subtree, addressed by `(level, index)`: level 0 are the leaves, and node
//! `(l, i)` covers leaves `[i·2^l, (i+1)·2^l)`. Complete nodes never change
//! once written, there are fewer than `2n` of them, and any MTH subtree,
//! perfect or not, can be hashed from O(log n) of them. That is what keeps
//! appends, roots and proofs at O(log n) with no rebuild after a restart.
//!
//! [`Frontier`] is the right border of the tree (the roots of its perfect
//! subtrees): appending a leaf to it yields the nodes that just became
//! complete, for the caller to persist.
//!
//! ```
//! use std::collections::HashMap;
//! use airlock_audit::merkle::{self, Frontier, Hash, MerkleError, NodeSource};
//!
//! struct Memory(HashMap<(u32, u64), Hash>);
//! impl NodeSource for Memory {
//!     fn node(&self, level: u32, index: u64) -> Result<Hash, MerkleError> {
//!         self.0.get(&(level, index)).copied().ok_or(MerkleError::MissingNode { level, index })
//!     }
//! }
//!
//! let mut store = Memory(HashMap::new());
//! let mut frontier = Frontier::new();
//! for entry in [&b"a"[..], b"b", b"c"] {
//!     for (level, index, hash) in frontier.append(merkle::leaf_hash(entry)) {
//!         store.0.insert((level, index), hash);
//!     }
//! }
//! let root = frontier.root();
//! let proof = merkle::inclusion_proof(1, 3, &store)?;
//! merkle::verify_inclusion(1, 3, &merkle::leaf_hash(b"b"), &proof, &root)?;
//! # Ok::<(), MerkleError>(())
//! ```

use sha2::{Digest, Sha256};

/// A SHA-256 digest: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// What went wrong computing or checking a Merkle tree value.
#[derive(Debug, thiserror::Error)]
pub enum MerkleError {
    /// A leaf index at or past the end of the tree.
    #[error("leaf index {index} is out of range for a tree of size {size}")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// The tree size it was asked against.
        size: u64,
    },
    /// A consistency proof asked for or checked with the sizes the wrong way round.
    #[error(
        "old tree size {old} is larger than new tree size {new}; hint: a log only grows, so give the smaller size first"
    )]
    SizeOrder {
        /// The size given as the older tree.
        old: u64,
        /// The size given as the newer tree.
        new: u64,
    },
    /// The node source does not have a complete node that the computation needs.
    #[error(
        "Merkle node (level {level}, index {index}) is not stored; hint: the tree size asked for may be larger than the log, or the node table is incomplete"
    )]
    MissingNode {
        /// Level of the node (0 = leaf).
        level: u32,
        /// Index of the node within its level.
        index: u64,
    },
    /// The node source failed to read a node.
    #[error("could not read Merkle node (level {level}, index {index})")]
    NodeRead {
        /// Level of the node (0 = leaf).
        level: u32,
        /// Index of the node within its level.
        index: u64,
        /// Why the read failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A proof was well-formed but did not lead to the expected hash.
    #[error("proof does not match: {0}")]
    ProofMismatch(String),
    /// A proof had the wrong number of hashes for the sizes it claims to cover.
    #[error("proof has {got} hashes but {expected} are needed for these tree sizes")]
    BadProofLength {
        /// The number of hashes RFC 9162 prescribes.
        expected: usize,
        /// The number of hashes in the proof.
        got: usize,
    },
}

/// Hash of a log entry as a leaf: SHA-256(0x00 ‖ entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(entry);
    h.finalize().into()
}

/// Hash of an interior node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Where the hashes of complete nodes come from (the store, or memory in tests).
pub trait NodeSource {
    /// The hash of the complete node `(level, index)`, covering leaves
    /// `[index·2^level, (index+1)·2^level)`. Fails with
    /// [`MerkleError::MissingNode`] when that node is not (yet) complete.
    fn node(&self, level: u32, index: u64) -> Result<Hash, MerkleError>;
    /// Several complete nodes, in the order asked for: a store may fetch
    /// them in one round trip (a frontier is up to 64 of them).
    fn nodes(&self, wanted: &[(u32, u64)]) -> Result<Vec<Hash>, MerkleError> {
        wanted.iter().map(|&(level, index)| self.node(level, index)).collect()
    }
}

/// The right border of the tree: the roots of its perfect subtrees, largest
/// (leftmost) first, one per set bit of the size, so at most 64 hashes.
///
/// It is all an appender needs in memory to extend the tree and compute its
/// root.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frontier {
    size: u64,
    // Invariant: hashes.len() == size.count_ones(), hashes[j] is the root of
    // the j-th perfect subtree from the left.
    hashes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The roots of the perfect subtrees, leftmost (largest) first.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Appends a leaf hash and returns every node that this completes as
    /// `(level, index, hash)`, from the leaf itself at level 0 upwards, so the
    /// caller can persist them.
    pub fn append(&mut self, leaf: Hash) -> Vec<(u32, u64, Hash)> {
        let mut completed = Vec::with_capacity(self.size.trailing_ones() as usize + 1);
        self.extend(leaf, |level, index, hash| completed.push((level, index, hash)));
        completed
    }

    /// Appends a leaf hash without collecting the completed nodes (for
    /// verifiers, which only need roots).
    pub fn push(&mut self, leaf: Hash) {
        self.extend(leaf, |_, _, _| {});
    }

    fn extend(&mut self, leaf: Hash, mut completed: impl FnMut(u32, u64, Hash)) {
        let old = self.size;
        // Each trailing one bit of the old size is a perfect subtree on the
        // border that the new leaf's subtree now pairs up with.
        let merges = old.trailing_ones();
        completed(0, old, leaf);
        let mut hash = leaf;
        for level in 1..=merges {
            let Some(left) = self.hashes.pop() else {
                break; // Unreachable by the invariant: one hash per set bit.
            };
            hash = node_hash(&left, &hash);
            completed(level, old.checked_shr(level).unwrap_or(0), hash);
        }
        self.hashes.push(hash);
        self.size = old + 1;
    }

    /// The RFC 6962 root of the whole tree ([`empty_root`] when it is empty).
    pub fn root(&self) -> Hash {
        let mut from_right = self.hashes.iter().rev();
        match from_right.next() {
            None => empty_root(),
            Some(last) => from_right.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }

    /// Rebuilds the frontier of the first `size` leaves from stored complete
    /// nodes (one read per set bit of `size`), for example after a restart.
    pub fn from_nodes(size: u64, src: &dyn NodeSource) -> Result<Frontier, MerkleError> {
        let mut wanted = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0u64;
        for level in (0..u64::BITS).rev() {
            if (size >> level) & 1 == 1 {
                wanted.push((level, start >> level));
                start += 1 << level;
            }
        }
        let hashes = src.nodes(&wanted)?;
        Ok(Frontier { size, hashes })
    }
}

/// The root of the tree made of the first `size` leaves, from stored
/// complete nodes (O(log n) reads).
pub fn root_at(size: u64, src: &dyn NodeSource) -> Result<Hash, MerkleError> {
    Ok(Frontier::from_nodes(size, src)?.root())
}

/// The largest power of two strictly below `n`, for `n >= 2` (RFC 9162's `k`).
fn split_point(n: u64) -> u64 {
    n.saturating_sub(1).checked_ilog2().map_or(1, |bits| 1 << bits)
}

/// MTH of leaves `[start, end)`. A perfect, aligned range is one stored node;
/// otherwise split as MTH does. For the ranges the proofs ask for, the left
/// part is always a perfect node, so this is O(log n) reads.
fn subtree_hash(start: u64, end: u64, src: &dyn NodeSource) -> Result<Hash, MerkleError> {
    let len = end.saturating_sub(start);
    if len == 0 {
        return Ok(empty_root());
    }
    if len.is_power_of_two() && start.is_multiple_of(len) {
        let level = len.trailing_zeros();
        return src.node(level, start >> level);
    }
    let mid = start + split_point(len);
    let left = subtree_hash(start, mid, src)?;
    let right = subtree_hash(mid, end, src)?;
    Ok(node_hash(&left, &right))
}

/// The RFC 9162 §2.1.3.1 inclusion proof (PATH) of leaf `index` in the tree
/// of the first `size` leaves, ordered from the leaf's sibling upwards.
pub fn inclusion_proof(index: u64, size: u64, src: &dyn NodeSource) -> Result<Vec<Hash>, MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    // Walk down from the root; PATH lists the siblings bottom-up, so reverse.
    let (mut start, mut end) = (0, size);
    let mut proof = Vec::new();
    while end - start > 1 {
        let mid = start + split_point(end - start);
        if index < mid {
            proof.push(subtree_hash(mid, end, src)?);
            end = mid;
        } else {
            proof.push(subtree_hash(start, mid, src)?);
            start = mid;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// The RFC 9162 §2.1.4.1 consistency proof (PROOF / SUBPROOF) that the tree
/// of the first `old` leaves is a prefix of the tree of the first `new`.
///
/// It is empty when `old` is 0 or equals `new`.
pub fn consistency_proof(old: u64, new: u64, src: &dyn NodeSource) -> Result<Vec<Hash>, MerkleError> {
    if old > new {
        return Err(MerkleError::SizeOrder { old, new });
    }
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[start:end], b), unrolled; it appends its hash after the
    // recursive part, so collect top-down and reverse.
    let (mut start, mut end) = (0, new);
    let mut m = old;
    let mut whole_old_tree = true;
    let mut proof = Vec::new();
    loop {
        let n = end - start;
        if m == n {
            if !whole_old_tree {
                proof.push(subtree_hash(start, end, src)?);
            }
            break;
        }
        let mid = start + split_point(n);
        if m <= mid - start {
            proof.push(subtree_hash(mid, end, src)?);
            end = mid;
        } else {
            proof.push(subtree_hash(start, mid, src)?);
            m -= mid - start;
            start = mid;
            whole_old_tree = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// Number of hashes in the inclusion proof of `index` in a tree of `size`
/// leaves, for `index < size`.
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    // Levels where the path to `index` and the path to the last leaf differ
    // have a perfect sibling; above that, one sibling per left border subtree.
    let inner = u64::BITS - (index ^ (size - 1)).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// Number of hashes in the consistency proof between sizes `0 < old < new`.
fn consistency_proof_len(old: u64, new: u64) -> usize {
    let shift = old.trailing_zeros();
    let inner = u64::BITS - ((old - 1) ^ (new - 1)).leading_zeros();
    let border = (old - 1).checked_shr(inner).unwrap_or(0).count_ones();
    // The old tree's root is only in the proof when it is not a perfect subtree.
    let seed = usize::from(!old.is_power_of_two());
    seed + (inner - shift + border) as usize
}

fn mismatch(what: &str, computed: &Hash, expected: &Hash) -> MerkleError {
    MerkleError::ProofMismatch(format!(
        "{what}: the proof leads to {} but the root given is {}",
        hex::encode(computed),
        hex::encode(expected)
    ))
}

/// Checks an inclusion proof with the RFC 9162 §2.1.3.2 algorithm: that
/// `leaf` is leaf `index` of the tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> Result<(), MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(MerkleError::BadProofLength { expected, got: proof.len() });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(MerkleError::BadProofLength { expected, got: proof.len() });
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(MerkleError::BadProofLength { expected, got: proof.len() });
    }
    if r != *root {
        return Err(mismatch(&format!("inclusion of leaf {index} in the tree of size {size}"), &r, root));
    }
    Ok(())
}

/// Checks a consistency proof with the RFC 9162 §2.1.4.2 algorithm: that the
/// tree of `old` leaves with root `old_root` is a prefix of the tree of `new`
/// leaves with root `new_root`.
///
/// With `old` 0 the proof must be empty and `old_root` must be [`empty_root`];
/// `new_root` is then not checked, since the empty tree is a prefix of any.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), MerkleError> {
    if old > new {
        return Err(MerkleError::SizeOrder { old, new });
    }
    if old == 0 || old == new {
        if !proof.is_empty() {
            return Err(MerkleError::BadProofLength { expected: 0, got: proof.len() });
        }
        if old == 0 && *old_root != empty_root() {
            return Err(mismatch("the tree of size 0 has the empty root", &empty_root(), old_root));
        }
        if old == new && old_root != new_root {
            return Err(mismatch(&format!("two trees of size {old} must have the same root"), old_root, new_root));
        }
        return Ok(());
    }
    let expected = consistency_proof_len(old, new);
    if proof.len() != expected {
        return Err(MerkleError::BadProofLength { expected, got: proof.len() });
    }
    // When the old tree is a perfect subtree its root is the starting point,
    // as if prepended to the proof.
    let (seed, rest) = if old.is_power_of_two() {
        (*old_root, proof)
    } else {
        match proof.split_first() {
            Some((first, rest)) => (*first, rest),
            None => return Err(MerkleError::BadProofLength { expected, got: 0 }),
        }
    };
    let (mut fnode, mut snode) = (old - 1, new - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (seed, seed);
    for c in rest {
        if snode == 0 {
            return Err(MerkleError::BadProofLength { expected, got: proof.len() });
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(MerkleError::BadProofLength { expected, got: proof.len() });
    }
    if fr != *old_root {
        return Err(mismatch(&format!("consistency from size {old} to {new}, old tree"), &fr, old_root));
    }
    if sr != *new_root {
        return Err(mismatch(&format!("consistency from size {old} to {new}, new tree"), &sr, new_root));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Complete nodes kept in memory, filled by [`Frontier::append`].
    #[derive(Default)]
    struct Memory {
        nodes: HashMap<(u32, u64), Hash>,
        frontier: Frontier,
    }

    impl Memory {
        fn with_leaves(leaves: &[Hash]) -> Self {
            let mut m = Memory::default();
            for leaf in leaves {
                m.push(*leaf);
            }
            m
        }

        fn push(&mut self, leaf: Hash) {
            for (level, index, hash) in self.frontier.append(leaf) {
                assert!(self.nodes.insert((level, index), hash).is_none(), "node ({level}, {index}) written twice");
            }
        }
    }

    impl NodeSource for Memory {
        fn node(&self, level: u32, index: u64) -> Result<Hash, MerkleError> {
            self.nodes.get(&(level, index)).copied().ok_or(MerkleError::MissingNode { level, index })
        }
    }

    fn h(s: &str) -> Hash {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// RFC 6962 test leaves from certificate-transparency (transparency-dev/merkle testonly).
    fn ct_leaves() -> Vec<Hash> {
        ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
            .iter()
            .map(|d| leaf_hash(&hex::decode(d).unwrap()))
            .collect()
    }

    const CT_ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    /// MTH straight from RFC 9162 §2.1.1, over the leaf hashes.
    fn naive_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
            }
        }
    }

    fn naive_k(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    /// PATH from RFC 9162 §2.1.3.1, literally recursive.
    fn naive_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        let n = leaves.len();
        if n == 1 {
            return Vec::new();
        }
        let k = naive_k(n);
        if m < k {
            let mut p = naive_path(m, &leaves[..k]);
            p.push(naive_root(&leaves[k..]));
            p
        } else {
            let mut p = naive_path(m - k, &leaves[k..]);
            p.push(naive_root(&leaves[..k]));
            p
        }
    }

    /// SUBPROOF from RFC 9162 §2.1.4.1, literally recursive.
    fn naive_subproof(m: usize, leaves: &[Hash], b: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if b { Vec::new() } else { vec![naive_root(leaves)] };
        }
        let k = naive_k(n);
        if m <= k {
            let mut p = naive_subproof(m, &leaves[..k], b);
            p.push(naive_root(&leaves[k..]));
            p
        } else {
            let mut p = naive_subproof(m - k, &leaves[k..], false);
            p.push(naive_root(&leaves[..k]));
            p
        }
    }

    fn flip(proof: &[Hash], at: usize) -> Vec<Hash> {
        let mut p = proof.to_vec();
        p[at][at % 32] ^= 1 << (at % 8);
        p
    }

    #[test]
    fn hash_primitives_follow_rfc_6962() {
        assert_eq!(hex::encode(empty_root()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        // SHA-256(0x00) is the leaf hash of the empty entry.
        assert_eq!(leaf_hash(b""), h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"));
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        assert_ne!(node_hash(&a, &b), node_hash(&b, &a));
        let mut joined = vec![0x01];
        joined.extend_from_slice(&a);
        joined.extend_from_slice(&b);
        assert_eq!(node_hash(&a, &b), <[u8; 32]>::from(Sha256::digest(&joined)));
    }

    #[test]
    fn roots_match_certificate_transparency_vectors() {
        let leaves = ct_leaves();
        let mut mem = Memory::default();
        assert_eq!(mem.frontier.root(), empty_root());
        for (n, leaf) in leaves.iter().enumerate() {
            mem.push(*leaf);
            assert_eq!(hex::encode(mem.frontier.root()), CT_ROOTS[n], "frontier root at size {}", n + 1);
        }
        for (n, want) in CT_ROOTS.iter().enumerate() {
            assert_eq!(hex::encode(root_at(n as u64 + 1, &mem).unwrap()), *want, "root_at({})", n + 1);
        }
        assert_eq!(root_at(0, &mem).unwrap(), empty_root());
    }

    #[test]
    fn proofs_match_certificate_transparency_vectors() {
        let mem = Memory::with_leaves(&ct_leaves());
        let inclusion: [(u64, u64, &[&str]); 5] = [
            (0, 1, &[]),
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (2, 3, &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (index, size, want) in inclusion {
            let got: Vec<String> = inclusion_proof(index, size, &mem).unwrap().iter().map(hex::encode).collect();
            assert_eq!(got, want, "inclusion proof ({index}, {size})");
        }
        let consistency: [(u64, u64, &[&str]); 3] = [
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (old, new, want) in consistency {
            let got: Vec<String> = consistency_proof(old, new, &mem).unwrap().iter().map(hex::encode).collect();
            assert_eq!(got, want, "consistency proof ({old}, {new})");
        }
    }

    #[test]
    fn every_inclusion_proof_up_to_8_verifies_and_tampering_fails() {
        let leaves = ct_leaves();
        let mem = Memory::with_leaves(&leaves);
        for size in 1..=8u64 {
            let root = root_at(size, &mem).unwrap();
            for index in 0..size {
                let leaf = leaves[index as usize];
                let proof = inclusion_proof(index, size, &mem).unwrap();
                verify_inclusion(index, size, &leaf, &proof, &root).unwrap();

                for at in 0..proof.len() {
                    let err = verify_inclusion(index, size, &leaf, &flip(&proof, at), &root).unwrap_err();
                    assert!(matches!(err, MerkleError::ProofMismatch(_)), "({index}, {size}) flip {at}: {err}");
                }
                let mut bad_leaf = leaf;
                bad_leaf[31] ^= 0x80;
                assert!(verify_inclusion(index, size, &bad_leaf, &proof, &root).is_err());
                let mut bad_root = root;
                bad_root[0] ^= 1;
                let err = verify_inclusion(index, size, &leaf, &proof, &bad_root).unwrap_err();
                assert!(err.to_string().contains(&hex::encode(bad_root)), "{err}");

                let mut longer = proof.clone();
                longer.push(root);
                assert!(matches!(
                    verify_inclusion(index, size, &leaf, &longer, &root),
                    Err(MerkleError::BadProofLength { got, .. }) if got == proof.len() + 1
                ));
                if !proof.is_empty() {
                    assert!(matches!(
                        verify_inclusion(index, size, &leaf, &proof[1..], &root),
                        Err(MerkleError::BadProofLength { .. })
                    ));
                }
                for other in (0..size).filter(|&i| i != index) {
                    assert!(verify_inclusion(other, size, &leaf, &proof, &root).is_err(), "{index} as {other}");
                }
            }
            assert!(matches!(
                verify_inclusion(size, size, &leaves[0], &[], &root),
                Err(MerkleError::IndexOutOfRange { index, size: s }) if index == size && s == size
            ));
            assert!(matches!(inclusion_proof(size, size, &mem), Err(MerkleError::IndexOutOfRange { .. })));
        }
    }

    #[test]
    fn every_consistency_proof_up_to_8_verifies_and_tampering_fails() {
        let mem = Memory::with_leaves(&ct_leaves());
        for new in 0..=8u64 {
            let new_root = root_at(new, &mem).unwrap();
            for old in 0..=new {
                let old_root = root_at(old, &mem).unwrap();
                let proof = consistency_proof(old, new, &mem).unwrap();
                verify_consistency(old, new, &old_root, &new_root, &proof)
                    .unwrap_or_else(|e| panic!("({old}, {new}) does not verify: {e}"));

                for at in 0..proof.len() {
                    let err = verify_consistency(old, new, &old_root, &new_root, &flip(&proof, at)).unwrap_err();
                    assert!(matches!(err, MerkleError::ProofMismatch(_)), "({old}, {new}) flip {at}: {err}");
                }
                let mut bad = old_root;
                bad[5] ^= 4;
                assert!(verify_consistency(old, new, &bad, &new_root, &proof).is_err(), "bad old root ({old}, {new})");
                // The empty tree is a prefix of every tree, so only then does the new root go unchecked.
                if old > 0 {
                    let mut bad = new_root;
                    bad[9] ^= 2;
                    assert!(
                        verify_consistency(old, new, &old_root, &bad, &proof).is_err(),
                        "bad new root ({old}, {new})"
                    );
                }
                let mut longer = proof.clone();
                longer.push(new_root);
                assert!(matches!(
                    verify_consistency(old, new, &old_root, &new_root, &longer),
                    Err(MerkleError::BadProofLength { .. })
                ));
                if !proof.is_empty() {
                    assert!(matches!(
                        verify_consistency(old, new, &old_root, &new_root, &proof[..proof.len() - 1]),
                        Err(MerkleError::BadProofLength { .. })
                    ));
                }
                // A root of a different size must not pass as the old one.
                if old > 0 && old < new {
                    let wrong = root_at(old - 1, &mem).unwrap();
                    assert!(verify_consistency(old, new, &wrong, &new_root, &proof).is_err());
                }
            }
        }
        assert!(matches!(consistency_proof(3, 2, &mem), Err(MerkleError::SizeOrder { old: 3, new: 2 })));
        let r = root_at(3, &mem).unwrap();
        assert!(matches!(verify_consistency(3, 2, &r, &r, &[]), Err(MerkleError::SizeOrder { .. })));
    }

    #[test]
    fn frontier_roots_and_proofs_agree_with_the_naive_tree_up_to_70() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let mut mem = Memory::default();
        let mut frontiers = vec![Frontier::new()];
        for leaf in &leaves {
            mem.push(*leaf);
            let n = mem.frontier.size() as usize;
            assert_eq!(mem.frontier.root(), naive_root(&leaves[..n]), "frontier root at {n}");
            assert_eq!(mem.frontier.hashes().len(), n.count_ones() as usize);
            frontiers.push(mem.frontier.clone());
        }

        // The store holds exactly the complete nodes, each the MTH of its range.
        let expected_nodes: usize = (0..7).map(|l| 70 >> l).sum();
        assert_eq!(mem.nodes.len(), expected_nodes);
        for (&(level, index), hash) in &mem.nodes {
            let start = (index << level) as usize;
            assert_eq!(*hash, naive_root(&leaves[start..start + (1 << level)]), "node ({level}, {index})");
        }

        for size in 0..=70u64 {
            let naive = naive_root(&leaves[..size as usize]);
            assert_eq!(root_at(size, &mem).unwrap(), naive, "root_at({size})");
            let restored = Frontier::from_nodes(size, &mem).unwrap();
            assert_eq!(restored, frontiers[size as usize], "restored frontier at {size}");
            for index in 0..size {
                let proof = inclusion_proof(index, size, &mem).unwrap();
                assert_eq!(proof, naive_path(index as usize, &leaves[..size as usize]), "path ({index}, {size})");
                verify_inclusion(index, size, &leaves[index as usize], &proof, &naive).unwrap();
            }
            for old in 1..=size {
                let proof = consistency_proof(old, size, &mem).unwrap();
                let want =
                    if old == size { Vec::new() } else { naive_subproof(old as usize, &leaves[..size as usize], true) };
                assert_eq!(proof, want, "consistency ({old}, {size})");
                let old_root = naive_root(&leaves[..old as usize]);
                verify_consistency(old, size, &old_root, &naive, &proof).unwrap();
            }
        }

        assert!(matches!(root_at(71, &mem), Err(MerkleError::MissingNode { level: 0, index: 70 })));
        assert!(matches!(inclusion_proof(3, 72, &mem), Err(MerkleError::MissingNode { .. })));
    }

    #[test]
    fn appending_reports_every_completed_node() {
        let mut f = Frontier::new();
        let leaves: Vec<Hash> = (0u8..4).map(|i| leaf_hash(&[i])).collect();
        assert_eq!(f.append(leaves[0]), vec![(0, 0, leaves[0])]);
        let n01 = node_hash(&leaves[0], &leaves[1]);
        assert_eq!(f.append(leaves[1]), vec![(0, 1, leaves[1]), (1, 0, n01)]);
        assert_eq!(f.append(leaves[2]), vec![(0, 2, leaves[2])]);
        let n23 = node_hash(&leaves[2], &leaves[3]);
        let n0123 = node_hash(&n01, &n23);
        assert_eq!(f.append(leaves[3]), vec![(0, 3, leaves[3]), (1, 1, n23), (2, 0, n0123)]);
        assert_eq!(f.hashes(), &[n0123]);
        assert_eq!(f.size(), 4);
    }

    #[test]
    fn restored_frontier_keeps_appending_to_the_same_tree() {
        let leaves: Vec<Hash> = (0u32..23).map(|i| leaf_hash(format!("entry {i}").as_bytes())).collect();
        let mut mem = Memory::with_leaves(&leaves[..13]);
        // As after a restart: only the stored nodes survive.
        let mut restored = Frontier::from_nodes(13, &mem).unwrap();
        assert_eq!(restored, mem.frontier);
        assert_eq!(restored.root(), mem.frontier.root());
        for leaf in &leaves[13..] {
            for (level, index, hash) in restored.append(*leaf) {
                mem.nodes.insert((level, index), hash);
            }
        }
        assert_eq!(restored.root(), naive_root(&leaves));
        assert_eq!(root_at(23, &mem).unwrap(), naive_root(&leaves));
        assert!(matches!(Frontier::from_nodes(24, &mem), Err(MerkleError::MissingNode { .. })));
    }

    #[test]
    fn roots_match_an_independent_python_hashlib_computation() {
        const SCRIPT: &str = r#"
import hashlib, sys
leaves = [bytes.fromhex(a) for a in sys.argv[1:]]
def mth(d):
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = 1
    while k * 2 < len(d):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()
for n in range(len(leaves) + 1):
    print(mth(leaves[:n]).hex())
"#;
        let entries: Vec<Vec<u8>> = (0u8..13).map(|i| (0..i * 3).map(|j| j ^ i.wrapping_mul(37)).collect()).collect();
        let output = match std::process::Command::new("python3")
            .arg("-c")
            .arg(SCRIPT)
            .args(entries.iter().map(hex::encode))
            .output()
        {
            Ok(output) => output,
            Err(e) => {
                eprintln!("skipping the python3 cross-check: cannot run python3 ({e})");
                return;
            }
        };
        assert!(output.status.success(), "python3 failed: {}", String::from_utf8_lossy(&output.stderr));
        let roots: Vec<String> = String::from_utf8(output.stdout).unwrap().lines().map(str::to_owned).collect();
        assert_eq!(roots.len(), entries.len() + 1);
        let mem = Memory::with_leaves(&entries.iter().map(|e| leaf_hash(e)).collect::<Vec<_>>());
        for (size, want) in roots.iter().enumerate() {
            assert_eq!(hex::encode(root_at(size as u64, &mem).unwrap()), *want, "size {size}");
        }
    }

    #[test]
    fn errors_name_what_did_not_match() {
        let mem = Memory::with_leaves(&ct_leaves());
        let root = root_at(8, &mem).unwrap();
        let err = verify_inclusion(3, 8, &ct_leaves()[2], &inclusion_proof(3, 8, &mem).unwrap(), &root).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("leaf 3") && msg.contains("size 8") && msg.contains(CT_ROOTS[7]), "{msg}");
        let err = verify_inclusion(3, 8, &ct_leaves()[3], &[], &root).unwrap_err();
        assert_eq!(err.to_string(), "proof has 0 hashes but 3 are needed for these tree sizes");
        assert!(MerkleError::MissingNode { level: 2, index: 5 }.to_string().contains("(level 2, index 5)"));
    }
}
