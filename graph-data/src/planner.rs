//! The offline update planner: explain one (missing) edge, find the shortest update path,
//! list the mirror gaps of a channel. Pure functions over a built graph and its
//! [`Provenance`]; the policy-engine serves them and the `graph-data` tool prints them.
//!
//! Versions are given and shown without the architecture build identifier, as a
//! cluster knows its own version; the graph's releases carry it (`4.16.3+amd64`).
//! A channel's view holds the releases a Cincinnati client of that channel and
//! architecture sees (concrete, listing both in their metadata), their edges and their
//! conditional edges, as the graph endpoint serves them.

use std::collections::{HashMap, HashSet, VecDeque};

use semver::{BuildMetadata, Version};
use serde::{Deserialize, Serialize};

use crate::graph::{Graph, ReleaseId};
use crate::keys::{ARCH_KEY, CHANNELS_KEY};
use crate::provenance::{Provenance, Rule};
use crate::{Release, Risk};

/// Whether the graph offers an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    /// An unconditional edge.
    Recommended,
    /// A conditional edge, offered with its risks.
    Conditional,
    /// No edge.
    None,
}

/// Why an update is missing (or conditional).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReasonKind {
    /// The release was never mirrored (a channel or a release names it).
    NotInMirror,
    /// The release is mirrored but the channel does not list it.
    NotInChannel,
    /// The release is mirrored for other architectures only.
    ArchMismatch,
    /// A plain blocked-edges file removed the edge.
    Blocked,
    /// A conditional risk applies.
    ConditionalRisk,
    /// Release metadata removed the edge.
    RemovedByMetadata,
    /// No release declares the edge.
    NotDeclared,
    /// Nothing knows this version.
    UnknownVersion,
}

/// One reason, with the graph-data file responsible when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// What kind of reason.
    pub kind: ReasonKind,
    /// The graph-data file, relative to its root, or null.
    pub file: Option<String>,
    /// A sentence for people.
    pub detail: String,
}

/// The answer of explain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The channel.
    pub channel: String,
    /// The architecture.
    pub arch: String,
    /// The source version.
    pub from: String,
    /// The target version.
    pub to: String,
    /// What the graph offers.
    pub edge: EdgeKind,
    /// Why, when it offers less than a recommended edge.
    pub reasons: Vec<Reason>,
    /// A conditional edge's risks, exactly as the graph carries them.
    pub risks: Vec<Risk>,
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hop {
    /// From this version.
    pub from: String,
    /// To this version.
    pub to: String,
    /// Recommended or conditional.
    pub edge: EdgeKind,
    /// The risks of a conditional hop.
    pub risks: Vec<Risk>,
}

/// A path with the fewest hops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdatePath {
    /// Whether it needs conditional edges (used only when no recommended path exists).
    pub conditional: bool,
    /// The hops, in order.
    pub hops: Vec<Hop>,
}

/// The answer of path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathAnswer {
    /// The channel.
    pub channel: String,
    /// The architecture.
    pub arch: String,
    /// The source version.
    pub from: String,
    /// The target: as asked, or the newest version reachable.
    pub to: Option<String>,
    /// The path, or none.
    pub paths: Vec<UpdatePath>,
    /// Why there is no path.
    pub reasons: Vec<Reason>,
}

/// A version the channel lists that the mirror lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// The version.
    pub version: String,
    /// The channel file listing it.
    pub file: Option<String>,
    /// `enables` (a mirrored version gets a path to the head it lacks), `shortens` (a
    /// shorter one), or `none`.
    pub effect: String,
    /// The mirrored versions whose path to the head it enables or shortens.
    pub helps: Vec<String>,
}

/// The answer of mirror-gaps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorGaps {
    /// The channel.
    pub channel: String,
    /// The architecture.
    pub arch: String,
    /// The newest mirrored version of the channel.
    pub head: Option<String>,
    /// The channel's versions the mirror lacks, oldest first.
    pub missing: Vec<Gap>,
}

/// The releases, edges and conditional edges one channel and architecture sees.
#[derive(Debug, Clone)]
pub struct ChannelView {
    /// The channel.
    pub channel: String,
    /// The architecture.
    pub arch: String,
    /// Member versions (arch stripped), sorted ascending.
    versions: Vec<Version>,
    ids: Vec<ReleaseId>,
    index: HashMap<Version, u32>,
    recommended: Vec<Vec<u32>>,
    conditional: Vec<Vec<u32>>,
    /// (from, to) -> index of the conditional group in the graph.
    groups: HashMap<(u32, u32), usize>,
    /// Whether every edge goes to a newer version (as real update edges do): a search
    /// for a target then never needs a version newer than it, nor an older target.
    monotone: bool,
}

fn csv_has(release: &Release, key: &str, value: &str) -> bool {
    release
        .metadata
        .get(key)
        .is_some_and(|csv| csv.split(',').any(|e| e.trim() == value))
}

/// `version` without the build identifier equal to `arch`.
pub fn strip_arch(version: &Version, arch: &str) -> Version {
    let rest: Vec<&str> = version
        .build
        .split('.')
        .filter(|id| !id.is_empty() && *id != arch)
        .collect();
    Version {
        build: if rest.is_empty() {
            BuildMetadata::EMPTY
        } else {
            BuildMetadata::new(&rest.join(".")).unwrap_or(BuildMetadata::EMPTY)
        },
        ..version.clone()
    }
}

/// `version` with the build identifier `arch`, unless it names a build already.
pub fn with_arch(version: &Version, arch: &str) -> Version {
    if !version.build.is_empty() {
        return version.clone();
    }
    Version {
        build: BuildMetadata::new(arch).unwrap_or(BuildMetadata::EMPTY),
        ..version.clone()
    }
}

impl ChannelView {
    /// The view of `channel` on `arch`.
    pub fn new(graph: &Graph, channel: &str, arch: &str) -> Self {
        let mut members: Vec<(Version, ReleaseId)> = graph
            .releases()
            .filter(|(_, r)| {
                !r.is_abstract() && csv_has(r, CHANNELS_KEY, channel) && csv_has(r, ARCH_KEY, arch)
            })
            .map(|(id, r)| (strip_arch(&r.version, arch), id))
            .collect();
        members.sort();
        let local: HashMap<ReleaseId, u32> = members
            .iter()
            .enumerate()
            .map(|(i, &(_, id))| (id, i as u32))
            .collect();
        let n = members.len();
        let mut recommended = vec![Vec::new(); n];
        for (i, &(_, id)) in members.iter().enumerate() {
            for child in graph.children(id) {
                if let Some(&c) = local.get(&child) {
                    recommended[i].push(c);
                }
            }
            recommended[i].sort_unstable();
        }
        let mut conditional = vec![Vec::new(); n];
        let mut groups = HashMap::new();
        for (g, group) in graph.conditional_edges().iter().enumerate() {
            for e in &group.edges {
                let (Some(f), Some(t)) = (graph.find(&e.from), graph.find(&e.to)) else {
                    continue;
                };
                if let (Some(&f), Some(&t)) = (local.get(&f), local.get(&t)) {
                    if groups.insert((f, t), g).is_none() {
                        conditional[f as usize].push(t);
                    }
                }
            }
        }
        for list in &mut conditional {
            list.sort_unstable();
        }
        let index = members
            .iter()
            .enumerate()
            .map(|(i, (v, _))| (v.clone(), i as u32))
            .collect();
        let monotone = recommended
            .iter()
            .chain(&conditional)
            .enumerate()
            .all(|(i, targets)| targets.iter().all(|&t| t as usize > i % n.max(1)));
        let (versions, ids) = members.into_iter().unzip();
        Self {
            monotone,
            channel: channel.to_owned(),
            arch: arch.to_owned(),
            versions,
            ids,
            index,
            recommended,
            conditional,
            groups,
        }
    }

    /// Member versions, ascending.
    pub fn versions(&self) -> &[Version] {
        &self.versions
    }

    /// Whether `version` (without arch) is a member.
    pub fn contains(&self, version: &Version) -> bool {
        self.index.contains_key(version)
    }

    /// Recommended targets of a member.
    pub fn recommended_from(&self, version: &Version) -> Vec<&Version> {
        self.index.get(version).map_or_else(Vec::new, |&i| {
            self.recommended[i as usize]
                .iter()
                .map(|&t| &self.versions[t as usize])
                .collect()
        })
    }

    /// Conditional targets of a member.
    pub fn conditional_from(&self, version: &Version) -> Vec<&Version> {
        self.index.get(version).map_or_else(Vec::new, |&i| {
            self.conditional[i as usize]
                .iter()
                .map(|&t| &self.versions[t as usize])
                .collect()
        })
    }

    fn edge(&self, graph: &Graph, f: u32, t: u32) -> (EdgeKind, Vec<Risk>) {
        if self.recommended[f as usize].binary_search(&t).is_ok() {
            return (EdgeKind::Recommended, Vec::new());
        }
        match self.groups.get(&(f, t)) {
            Some(&g) => (
                EdgeKind::Conditional,
                graph.conditional_edges()[g].risks.clone(),
            ),
            None => (EdgeKind::None, Vec::new()),
        }
    }

    /// Fewest-hop path from `f` to every node, over recommended (and conditional) edges:
    /// the predecessor of each reached node.
    /// Stops as soon as `stop_at` is reached: edges are dense (every earlier patch of a
    /// minor and the whole minor before), so a target is usually one or two hops away.
    fn bfs(&self, f: u32, with_conditional: bool, stop_at: Option<u32>) -> Vec<Option<u32>> {
        let n = self.versions.len();
        let mut prev = vec![None; n];
        let mut seen = vec![false; n];
        seen[f as usize] = true;
        let mut queue = VecDeque::from([f]);
        while let Some(u) = queue.pop_front() {
            let next = self.recommended[u as usize]
                .iter()
                .chain(if with_conditional {
                    self.conditional[u as usize].iter()
                } else {
                    [].iter()
                });
            for &v in next {
                if self.monotone && stop_at.is_some_and(|t| v > t) {
                    continue;
                }
                if !seen[v as usize] {
                    seen[v as usize] = true;
                    prev[v as usize] = Some(u);
                    if stop_at == Some(v) {
                        return prev;
                    }
                    queue.push_back(v);
                }
            }
        }
        prev
    }
}

/// Explains the (missing) edge `from -> to` of a channel view.
pub fn explain(
    graph: &Graph,
    provenance: &Provenance,
    view: &ChannelView,
    from: &Version,
    to: &Version,
) -> Explanation {
    let mut out = Explanation {
        channel: view.channel.clone(),
        arch: view.arch.clone(),
        from: from.to_string(),
        to: to.to_string(),
        edge: EdgeKind::None,
        reasons: Vec::new(),
        risks: Vec::new(),
    };
    let mut reasons = endpoint_reasons(graph, provenance, view, from);
    reasons.extend(endpoint_reasons(graph, provenance, view, to));
    if !reasons.is_empty() {
        out.reasons = reasons;
        return out;
    }
    let (f, t) = (view.index[from], view.index[to]);
    let (edge, risks) = view.edge(graph, f, t);
    out.edge = edge;
    let (full_from, full_to) = (
        graph.release(view.ids[f as usize]),
        graph.release(view.ids[t as usize]),
    );
    match edge {
        EdgeKind::Recommended => {}
        EdgeKind::Conditional => {
            for risk in &risks {
                let files = provenance.risk_files(&risk.name);
                out.reasons.push(Reason {
                    kind: ReasonKind::ConditionalRisk,
                    file: pick_risk_file(&files, to),
                    detail: format!(
                        "the update from {from} to {to} is offered only with the risk {}: {}",
                        risk.name, risk.url
                    ),
                });
            }
            out.risks = risks;
        }
        EdgeKind::None => {
            let removal =
                provenance.removal(&full_from.version.to_string(), &full_to.version.to_string());
            out.reasons.push(match removal {
                Some(r) => {
                    let file = r.file.map(|i| provenance.file(i).to_owned());
                    let (kind, detail) = match r.rule {
                        Rule::Blocked => (
                            ReasonKind::Blocked,
                            format!("a blocked-edges file removes every update from {from} to {to}"),
                        ),
                        Rule::ConditionalRisk => (
                            ReasonKind::ConditionalRisk,
                            format!("a conditional risk took the update from {from} to {to} out of the recommended edges"),
                        ),
                        Rule::RemovedByMetadata => (
                            ReasonKind::RemovedByMetadata,
                            match &file {
                                Some(f) => format!("{f} removes the update from {from} to {to}"),
                                None => format!("the release metadata of the image removes the update from {from} to {to}"),
                            },
                        ),
                    };
                    Reason { kind, file, detail }
                }
                None => Reason {
                    kind: ReasonKind::NotDeclared,
                    file: None,
                    detail: if to <= from {
                        format!("{to} is not newer than {from}: no release declares such an update")
                    } else {
                        format!("no release declares an update from {from} to {to} (the previous list of {to} does not name {from})")
                    },
                },
            });
        }
    }
    out
}

/// The blocked-edges file of a risk, preferring the one written for `to`.
fn pick_risk_file(files: &[&str], to: &Version) -> Option<String> {
    let prefix = format!("blocked-edges/{to}-");
    files
        .iter()
        .find(|f| f.starts_with(&prefix))
        .or(files.first())
        .map(|f| (*f).to_owned())
}

/// Why a version is not a member of the view (empty if it is).
pub fn endpoint_reasons(
    graph: &Graph,
    provenance: &Provenance,
    view: &ChannelView,
    version: &Version,
) -> Vec<Reason> {
    if view.contains(version) {
        return Vec::new();
    }
    let (channel, arch) = (view.channel.as_str(), view.arch.as_str());
    let channel_file = provenance
        .channel(channel)
        .map(|c| provenance.file(c.file).to_owned());
    let listed = provenance.channel_lists(channel, version);
    let node = graph
        .find(&with_arch(version, arch))
        .map(|id| graph.release(id));
    match node {
        Some(r) if !r.is_abstract() => {
            let others = provenance.channels_listing(version).join(", ");
            return vec![Reason {
                kind: ReasonKind::NotInChannel,
                file: channel_file,
                detail: if others.is_empty() {
                    format!("{version} is mirrored but no channel lists it")
                } else {
                    format!("{version} is mirrored but {channel} does not list it (listed in: {others})")
                },
            }];
        }
        _ => {}
    }
    let other_arches: Vec<String> = graph
        .releases()
        .filter(|(_, r)| !r.is_abstract() && strip_arch(&r.version, r.arch()) == *version)
        .map(|(_, r)| r.arch().to_owned())
        .collect();
    let mut reasons = Vec::new();
    if listed || node.is_some() {
        reasons.push(Reason {
            kind: ReasonKind::NotInMirror,
            file: if listed { channel_file } else { None },
            detail: if listed {
                format!("{channel} lists {version}, but the mirror has no {arch} release image of it")
            } else {
                format!("a mirrored release names {version} as an update source or target, but the mirror has no {arch} release image of it")
            },
        });
    }
    if !other_arches.is_empty() {
        reasons.push(Reason {
            kind: ReasonKind::ArchMismatch,
            file: None,
            detail: format!(
                "{version} is mirrored for {} only, not for {arch}",
                other_arches.join(", ")
            ),
        });
    }
    if reasons.is_empty() {
        reasons.push(Reason {
            kind: ReasonKind::UnknownVersion,
            file: None,
            detail: format!("no mirrored release, channel or release metadata knows {version}"),
        });
    }
    reasons
}

/// The update path with the fewest hops from `from` to `to`, or to the newest version
/// reachable when `to` is `None`.
pub fn path(
    graph: &Graph,
    provenance: &Provenance,
    view: &ChannelView,
    from: &Version,
    to: Option<&Version>,
) -> PathAnswer {
    let mut out = PathAnswer {
        channel: view.channel.clone(),
        arch: view.arch.clone(),
        from: from.to_string(),
        to: to.map(Version::to_string),
        paths: Vec::new(),
        reasons: Vec::new(),
    };
    let mut reasons = endpoint_reasons(graph, provenance, view, from);
    if let Some(to) = to {
        reasons.extend(endpoint_reasons(graph, provenance, view, to));
    }
    if !reasons.is_empty() {
        out.reasons = reasons;
        return out;
    }
    let f = view.index[from];
    let reached = |prev: &[Option<u32>], t: u32| t == f || prev[t as usize].is_some();
    let head = view.versions.len() as u32 - 1;
    let (t, any) = match to {
        Some(to) => {
            let t = view.index[to];
            if view.monotone && t < f {
                (t, vec![None; view.versions.len()])
            } else {
                (t, view.bfs(f, true, Some(t)))
            }
        }
        None => {
            // Members are sorted: the newest reachable is the head when it is reached,
            // else the last one a full search reaches.
            let any = view.bfs(f, true, Some(head));
            if reached(&any, head) {
                (head, any)
            } else {
                let t = (0..=head).rev().find(|&t| reached(&any, t)).unwrap_or(f);
                (t, any)
            }
        }
    };
    let recommended = if view.monotone && t < f {
        vec![None; view.versions.len()]
    } else {
        view.bfs(f, false, Some(t))
    };
    out.to = Some(view.versions[t as usize].to_string());
    let (prev, conditional) = if reached(&recommended, t) {
        (recommended, false)
    } else if reached(&any, t) {
        (any, true)
    } else {
        out.reasons = gap_reasons(graph, provenance, view, f, t);
        return out;
    };
    let mut nodes = vec![t];
    let mut at = t;
    while at != f {
        at = prev[at as usize].expect("a reached node has a predecessor");
        nodes.push(at);
    }
    nodes.reverse();
    let hops = nodes
        .windows(2)
        .map(|w| {
            let (edge, risks) = view.edge(graph, w[0], w[1]);
            Hop {
                from: view.versions[w[0] as usize].to_string(),
                to: view.versions[w[1] as usize].to_string(),
                edge,
                risks,
            }
        })
        .collect();
    out.paths.push(UpdatePath { conditional, hops });
    out
}

/// Why `t` cannot be reached from `f`: the releases outside the channel view that a
/// declared chain of updates would need, or that none is declared.
fn gap_reasons(
    graph: &Graph,
    provenance: &Provenance,
    view: &ChannelView,
    f: u32,
    t: u32,
) -> Vec<Reason> {
    let arch = view.arch.as_str();
    let (from, to) = (&view.versions[f as usize], &view.versions[t as usize]);
    if view.monotone && t < f {
        return vec![Reason {
            kind: ReasonKind::NotDeclared,
            file: None,
            detail: format!("{to} is not newer than {from}: no release declares such an update"),
        }];
    }
    // Over every release of this architecture (mirrored or only named), shortest chain.
    let start = view.ids[f as usize];
    let goal = view.ids[t as usize];
    let on_arch = |id: ReleaseId| {
        let r = graph.release(id);
        r.version.build.split('.').any(|b| b == arch)
    };
    let mut prev: HashMap<ReleaseId, ReleaseId> = HashMap::new();
    let mut seen: HashSet<ReleaseId> = HashSet::from([start]);
    let mut queue = VecDeque::from([start]);
    while let Some(u) = queue.pop_front() {
        if u == goal {
            break;
        }
        for v in graph.children(u) {
            if on_arch(v) && seen.insert(v) {
                prev.insert(v, u);
                queue.push_back(v);
            }
        }
    }
    if !seen.contains(&goal) {
        return missing_links(graph, provenance, view, from, goal);
    }
    let mut reasons = Vec::new();
    let mut at = goal;
    while let Some(&p) = prev.get(&at) {
        if p != start {
            let v = strip_arch(&graph.release(p).version, arch);
            if !view.contains(&v) {
                for mut r in endpoint_reasons(graph, provenance, view, &v) {
                    r.detail = format!("{} (it would connect {from} to {to})", r.detail);
                    reasons.push(r);
                }
            }
        }
        at = p;
    }
    reasons.reverse();
    if reasons.is_empty() {
        // The chain exists in the graph but over edges the channel view lost.
        reasons.push(Reason {
            kind: ReasonKind::NotDeclared,
            file: None,
            detail: format!("no chain of offered updates leads from {from} to {to}"),
        });
    }
    reasons
}

/// No declared chain: the mirror cannot know the updates a missing release accepts
/// (its image holds them), so name the missing releases newer than `from` that lead
/// to `goal`, closest to `from` first: mirroring them is what may connect the two.
fn missing_links(
    graph: &Graph,
    provenance: &Provenance,
    view: &ChannelView,
    from: &Version,
    goal: ReleaseId,
) -> Vec<Reason> {
    let arch = view.arch.as_str();
    let to = strip_arch(&graph.release(goal).version, arch);
    let mut seen: HashSet<ReleaseId> = HashSet::from([goal]);
    let mut queue = VecDeque::from([goal]);
    let mut candidates: Vec<Version> = Vec::new();
    while let Some(u) = queue.pop_front() {
        for p in graph.parents(u) {
            let release = graph.release(p);
            if !release.version.build.split('.').any(|b| b == arch) || !seen.insert(p) {
                continue;
            }
            let v = strip_arch(&release.version, arch);
            if release.is_abstract() && v > *from {
                candidates.push(v);
            }
            queue.push_back(p);
        }
    }
    candidates.sort();
    let mut reasons: Vec<Reason> = candidates
        .iter()
        .take(3)
        .map(|v| {
            let listed = provenance.channel_lists(&view.channel, v);
            Reason {
                kind: ReasonKind::NotInMirror,
                file: listed
                    .then(|| provenance.channel(&view.channel).map(|c| provenance.file(c.file).to_owned()))
                    .flatten(),
                detail: format!(
                    "{v} is not mirrored for {arch}; it leads to {to}, and mirroring it may connect {from} to {to}"
                ),
            }
        })
        .collect();
    if reasons.is_empty() {
        reasons.push(Reason {
            kind: ReasonKind::NotDeclared,
            file: None,
            detail: format!("no chain of declared updates leads from {from} to {to}"),
        });
    }
    reasons
}

/// The channel's versions the mirror lacks on this architecture, and which would enable
/// or shorten a path from a mirrored version to the channel head.
pub fn mirror_gaps(graph: &Graph, provenance: &Provenance, view: &ChannelView) -> MirrorGaps {
    let arch = view.arch.as_str();
    let n = view.versions.len();
    let head = view.versions.last().cloned();
    // Hops to the head from every member, over any offered edge (reverse BFS).
    let mut dist: Vec<Option<u32>> = vec![None; n];
    if n > 0 {
        let mut parents = vec![Vec::new(); n];
        for u in 0..n {
            for &v in view.recommended[u].iter().chain(&view.conditional[u]) {
                parents[v as usize].push(u as u32);
            }
        }
        dist[n - 1] = Some(0);
        let mut queue = VecDeque::from([(n - 1) as u32]);
        while let Some(u) = queue.pop_front() {
            let d = dist[u as usize].expect("queued nodes have a distance");
            for &p in &parents[u as usize] {
                if dist[p as usize].is_none() {
                    dist[p as usize] = Some(d + 1);
                    queue.push_back(p);
                }
            }
        }
    }
    let channel_file = provenance
        .channel(&view.channel)
        .map(|c| provenance.file(c.file).to_owned());
    let mut listed: Vec<Version> = provenance
        .channel(&view.channel)
        .map(|c| {
            c.versions
                .iter()
                .filter_map(|&i| Version::parse(provenance.version(i)).ok())
                .filter(|v| v.build.is_empty() || v.build.as_str() == arch)
                .map(|v| strip_arch(&v, arch))
                .collect()
        })
        .unwrap_or_default();
    listed.sort();
    listed.dedup();
    let mut missing = Vec::new();
    for v in listed {
        if view.contains(&v) {
            continue;
        }
        let full = with_arch(&v, arch);
        let mut helps = Vec::new();
        let mut enables = false;
        if let Some(id) = graph.find(&full) {
            // If it were mirrored: its hops to the head through members it declares.
            let through = graph
                .children(id)
                .into_iter()
                .filter_map(|c| {
                    let cv = strip_arch(&graph.release(c).version, arch);
                    view.index.get(&cv).and_then(|&i| dist[i as usize])
                })
                .min();
            if let Some(d) = through {
                for p in graph.parents(id) {
                    let pv = strip_arch(&graph.release(p).version, arch);
                    if let Some(&i) = view.index.get(&pv) {
                        match dist[i as usize] {
                            None => {
                                enables = true;
                                helps.push(pv.to_string());
                            }
                            Some(before) if d + 2 < before => helps.push(pv.to_string()),
                            Some(_) => {}
                        }
                    }
                }
            }
        }
        helps.sort_by(|a, b| Version::parse(a).ok().cmp(&Version::parse(b).ok()));
        missing.push(Gap {
            version: v.to_string(),
            file: channel_file.clone(),
            effect: if enables {
                "enables".to_owned()
            } else if helps.is_empty() {
                "none".to_owned()
            } else {
                "shortens".to_owned()
            },
            helps,
        });
    }
    MirrorGaps {
        channel: view.channel.clone(),
        arch: arch.to_owned(),
        head: head.map(|h| h.to_string()),
        missing,
    }
}

/// An oc-mirror `ImageSetConfiguration` that mirrors the given versions of a channel.
pub fn imageset(gaps: &MirrorGaps, only_helpful: bool) -> String {
    let mut out = String::from(
        "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  platform:\n    graph: true\n",
    );
    out.push_str(&format!("    architectures:\n    - {}\n", gaps.arch));
    let wanted: Vec<&Gap> = gaps
        .missing
        .iter()
        .filter(|g| !only_helpful || g.effect != "none")
        .collect();
    out.push_str(if wanted.is_empty() {
        "    channels: []\n"
    } else {
        "    channels:\n"
    });
    for gap in wanted {
        out.push_str(&format!(
            "    - name: {}\n      type: ocp\n      minVersion: {}\n      maxVersion: {}\n",
            gaps.channel, gap.version, gap.version
        ));
    }
    out
}
