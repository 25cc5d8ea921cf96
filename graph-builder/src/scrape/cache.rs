//! The digest-keyed cache that survives across scrapes (A3 "cheap refreshes").
//!
//! Keys are content digests, so entries never go stale: a manifest digest maps to what the
//! image turned out to be (a release, not a release, a dropped multi-arch shard), and a layer
//! digest is remembered when the layer holds no release-metadata, so component images that
//! share layers are scanned once. Each remembered layer notes the last image that used it,
//! and is forgotten with that image: digests the registry no longer serves do not pile up
//! across scrapes. Only finished results go in: no placeholders, and no
//! errors or invalid releases, which are retried by the next scrape.
//!
//! It also holds the layer-scan slots: at most [`LAYER_SCANS`] layers larger than
//! [`SMALL_LAYER`] (or of unknown size) are streamed at once, whatever `fetch_concurrency`
//! says. A long stream holds hyper's read buffer (it grows while the blocking reader lags),
//! a gzip window and a blocking thread with its own malloc arena: 1.5 to 2 MB together,
//! measured (mixed benchmark: 24 MB peak with 16 at once, 12.6 MB with 2, 10.3 MB with 1,
//! against 7.9 MB for the releases alone), while the cold scrape took no longer, since the
//! registry's CPU bounds it. Small layers (a release's metadata layer) are searched in
//! memory without a blocking thread (`layer::INLINE_LAYER_CAP`) and take no slot, so cold
//! scrapes of releases keep their pace.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use semver::Version;

use crate::scrape::release_metadata::ReleaseMetadata;

/// A release image as found: its architecture and release-metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReleaseImage {
    pub(crate) arch: String,
    pub(crate) metadata: ReleaseMetadata,
}

/// What one manifest digest turned out to be.
#[derive(Debug, Clone)]
pub(crate) enum ImageOutcome {
    Release(Arc<ReleaseImage>),
    /// A readable image or artifact without release-metadata; the reason is for logs.
    NotRelease(String),
    /// A per-arch child of a multi payload tagged on its own.
    ShardDropped,
    /// A release whose metadata (or layer) cannot be used; never cached.
    Invalid(String),
}

/// How many large layers are streamed at once (manifests, configs and small layers are not
/// limited by this).
pub(crate) const LAYER_SCANS: usize = 1;
/// Layers up to this size (from the manifest) take no scan slot.
pub(crate) const SMALL_LAYER: u64 = 1024 * 1024;

/// The layer-scan slots.
#[derive(Debug)]
struct ScanSlots(tokio::sync::Semaphore);

impl Default for ScanSlots {
    fn default() -> Self {
        ScanSlots(tokio::sync::Semaphore::new(LAYER_SCANS))
    }
}

/// The cache; cheap to share between concurrent tag tasks.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    scan_slots: ScanSlots,
    images: Mutex<HashMap<String, ImageOutcome>>,
    /// Layers without release-metadata, each with the last image (manifest digest) found
    /// to hold it.
    plain_layers: Mutex<HashMap<String, String>>,
    /// One lock per layer being read, so that images sharing a base layer wait for one
    /// download instead of each streaming it.
    layers_in_flight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// `previous`/`next` lists by content. The architectures of one release list the same
    /// versions, so at full scale (hundreds of versions per list, five architectures)
    /// sharing them keeps one list where there were five.
    version_lists: Mutex<HashSet<Arc<[Version]>>>,
}

impl Cache {
    pub(crate) fn is_empty(&self) -> bool {
        self.images.lock().expect("cache lock").is_empty()
    }

    pub(crate) fn image(&self, digest: &str) -> Option<ImageOutcome> {
        self.images.lock().expect("cache lock").get(digest).cloned()
    }

    /// Remembers a finished outcome; invalid ones are not kept.
    pub(crate) fn store_image(&self, digest: &str, outcome: &ImageOutcome) {
        if !matches!(outcome, ImageOutcome::Invalid(_)) {
            self.images
                .lock()
                .expect("cache lock")
                .insert(digest.to_string(), outcome.clone());
        }
    }

    /// Forgets the images not in `digests` (no tag points at them any more), the layers
    /// last used by one of them, and the version lists nothing else holds.
    pub(crate) fn retain_images(&self, digests: &HashSet<String>) {
        self.images
            .lock()
            .expect("cache lock")
            .retain(|digest, _| digests.contains(digest));
        self.plain_layers
            .lock()
            .expect("cache lock")
            .retain(|_, image| digests.contains(image));
        self.version_lists
            .lock()
            .expect("cache lock")
            .retain(|list| Arc::strong_count(list) > 1);
    }

    /// `metadata` with its `previous` and `next` lists shared with any equal list seen
    /// before.
    pub(crate) fn share_lists(&self, mut metadata: ReleaseMetadata) -> ReleaseMetadata {
        let mut lists = self.version_lists.lock().expect("cache lock");
        for list in [&mut metadata.previous, &mut metadata.next] {
            if list.is_empty() {
                continue;
            }
            match lists.get(&**list) {
                Some(shared) => *list = Arc::clone(shared),
                None => {
                    lists.insert(Arc::clone(list));
                }
            }
        }
        metadata
    }

    /// Waits until no other task reads `digest` and, for a large layer (`size` over
    /// [`SMALL_LAYER`] or unknown), a scan slot is free; the guard is held while reading it.
    pub(crate) async fn reading_layer(&self, digest: &str, size: Option<u64>) -> LayerGuard<'_> {
        let lock = Arc::clone(
            self.layers_in_flight
                .lock()
                .expect("cache lock")
                .entry(digest.to_string())
                .or_default(),
        );
        let guard = lock.lock_owned().await;
        // Taken after the layer's own lock, so tasks waiting for a layer another task is
        // reading do not hold slots.
        let slot = match size {
            Some(size) if size <= SMALL_LAYER => None,
            _ => Some(self.scan_slots.0.acquire().await.expect("never closed")),
        };
        LayerGuard {
            _slot: slot,
            _guard: guard,
            cache: self,
            digest: digest.to_string(),
        }
    }

    /// Whether layer `digest` is known to hold no release-metadata; if so, `image` becomes
    /// its last user.
    pub(crate) fn layer_is_plain(&self, digest: &str, image: &str) -> bool {
        match self
            .plain_layers
            .lock()
            .expect("cache lock")
            .get_mut(digest)
        {
            Some(user) => {
                if user != image {
                    image.clone_into(user);
                }
                true
            }
            None => false,
        }
    }

    /// Remembers that layer `digest`, read whole and verified, holds no release-metadata.
    pub(crate) fn mark_layer_plain(&self, digest: &str, image: &str) {
        self.plain_layers
            .lock()
            .expect("cache lock")
            .insert(digest.to_string(), image.to_string());
    }
}

/// Held while one task reads a layer; dropping it lets the waiting tasks in, and the last
/// one out removes the entry.
pub(crate) struct LayerGuard<'a> {
    _slot: Option<tokio::sync::SemaphorePermit<'a>>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
    cache: &'a Cache,
    digest: String,
}

impl Drop for LayerGuard<'_> {
    fn drop(&mut self) {
        let mut in_flight = self.cache.layers_in_flight.lock().expect("cache lock");
        // The map's Arc plus ours: nobody else holds or waits for this layer.
        if in_flight
            .get(&self.digest)
            .is_some_and(|l| Arc::strong_count(l) <= 2)
        {
            in_flight.remove(&self.digest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_outcomes_are_not_cached() {
        let cache = Cache::default();
        cache.store_image("sha256:a", &ImageOutcome::Invalid("bad".into()));
        assert!(cache.is_empty() && cache.image("sha256:a").is_none());
        cache.store_image("sha256:b", &ImageOutcome::NotRelease("component".into()));
        assert!(matches!(
            cache.image("sha256:b"),
            Some(ImageOutcome::NotRelease(_))
        ));
        cache.retain_images(&HashSet::from(["sha256:x".to_string()]));
        assert!(cache.is_empty());
        assert!(!cache.layer_is_plain("sha256:c", "sha256:i"));
        cache.mark_layer_plain("sha256:c", "sha256:i");
        assert!(cache.layer_is_plain("sha256:c", "sha256:i"));
    }

    #[test]
    fn plain_layers_go_with_the_last_image_that_used_them() {
        let cache = Cache::default();
        cache.mark_layer_plain("sha256:base", "sha256:old");
        cache.mark_layer_plain("sha256:gone", "sha256:old");
        // A newer image shares the base layer: it survives the old image.
        assert!(cache.layer_is_plain("sha256:base", "sha256:new"));
        cache.retain_images(&HashSet::from(["sha256:new".to_string()]));
        assert!(cache.layer_is_plain("sha256:base", "sha256:new"));
        assert!(!cache.layer_is_plain("sha256:gone", "sha256:new"));
        cache.retain_images(&HashSet::new());
        assert!(!cache.layer_is_plain("sha256:base", "sha256:new"));
    }

    #[test]
    fn equal_version_lists_are_shared_until_nothing_holds_them() {
        let cache = Cache::default();
        let metadata = |previous: &[Version]| ReleaseMetadata {
            version: Version::new(4, 2, 0),
            previous: previous.into(),
            next: Arc::from([]),
            metadata: Default::default(),
        };
        let list = [Version::new(4, 1, 0), Version::new(4, 1, 1)];
        let amd64 = cache.share_lists(metadata(&list));
        let arm64 = cache.share_lists(metadata(&list));
        let other = cache.share_lists(metadata(&list[..1]));
        assert!(Arc::ptr_eq(&amd64.previous, &arm64.previous));
        assert!(!Arc::ptr_eq(&amd64.previous, &other.previous));
        assert_eq!(*other.previous, list[..1]);
        drop((amd64, arm64));
        cache.retain_images(&HashSet::new());
        // Only `other`'s list is still held by anyone.
        assert_eq!(cache.version_lists.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn at_most_layer_scans_large_layers_are_read_at_once() {
        let cache = Cache::default();
        let mut guards = Vec::new();
        for i in 0..LAYER_SCANS {
            guards.push(cache.reading_layer(&format!("sha256:{i}"), None).await);
        }
        // Small layers are not held back.
        let _small = cache.reading_layer("sha256:small", Some(SMALL_LAYER)).await;
        let next = cache.reading_layer("sha256:next", Some(SMALL_LAYER + 1));
        tokio::pin!(next);
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), &mut next).await;
        assert!(waited.is_err(), "a slot was free beyond {LAYER_SCANS}");
        guards.pop();
        let _next = tokio::time::timeout(std::time::Duration::from_secs(5), next)
            .await
            .expect("a freed slot is taken");
    }
}
