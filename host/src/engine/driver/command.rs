//! The command driver: effects as gluster, LVM and filesystem commands run
//! through each node's executor.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Applied, DeviceFacts, Driver, DriverError, tagged_capacity};
use crate::exec::brick::{self, LvmBrick};
use crate::exec::command::{BoxFuture, Cmd, ExecError, Executor, NodeExecutor, Transport};
use crate::exec::gluster::{self, BrickStatus, Failure, Peer, VolumeInfo};
use crate::exec::lvm::{self, LvmOptions};
use crate::model::options::OptionNames;
use crate::model::paths::BrickRoot;
use crate::model::storage::{Backend, DeviceRecord, NodeRecord};
use crate::plan::effect::{BrickAddress, Effect, Placed, Target};

/// How aplo reaches a node by default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Reach {
    /// Run commands on this machine (every node is this machine).
    #[default]
    Local,
    /// `ssh [user@]<manage hostname>` with extra options.
    Ssh {
        /// The remote user, if not the current one.
        user: Option<String>,
        /// Extra `ssh` options, e.g. `-i key`.
        options: Vec<String>,
    },
}

/// The executor of each node, made on first use from its manage hostname.
pub struct Connections {
    reach: Reach,
    overrides: HashMap<String, Transport>,
    one_shot: bool,
    made: Mutex<HashMap<String, Arc<NodeExecutor>>>,
}

impl Connections {
    /// Connections reaching nodes by `reach`, except those in `overrides`
    /// (manage hostname to transport).
    pub fn new(reach: Reach, overrides: HashMap<String, Transport>) -> Connections {
        Connections {
            reach,
            overrides,
            one_shot: false,
            made: Mutex::new(HashMap::new()),
        }
    }

    /// Start a `gluster` process for every gluster command instead of
    /// keeping a CLI session per node ([`crate::exec::session`]).
    pub fn one_shot(mut self) -> Connections {
        self.one_shot = true;
        self
    }

    /// The executor of a node.
    pub fn node(&self, node: &NodeRecord) -> Arc<NodeExecutor> {
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        made.entry(node.manage.clone())
            .or_insert_with(|| {
                let transport = self
                    .overrides
                    .get(&node.manage)
                    .cloned()
                    .unwrap_or_else(|| match &self.reach {
                        Reach::Local => Transport::Local,
                        Reach::Ssh { user, options } => Transport::Ssh {
                            destination: match user {
                                Some(user) => format!("{user}@{}", node.manage),
                                None => node.manage.clone(),
                            },
                            options: options.clone(),
                        },
                    });
                if self.one_shot {
                    NodeExecutor::one_shot(node.manage.clone(), transport)
                } else {
                    NodeExecutor::new(node.manage.clone(), transport)
                }
            })
            .clone()
    }
}

/// Settings of the command driver.
#[derive(Debug, Clone)]
pub struct CommandConfig {
    /// How LVM runs.
    pub lvm: LvmOptions,
    /// Where `lvm-thin` bricks are mounted on each node.
    pub lvm_root: BrickRoot,
    /// How many times a gluster command that found the cluster busy is tried.
    pub busy_attempts: u32,
    /// The first wait after a busy answer; it doubles each time.
    pub busy_backoff: Duration,
}

impl Default for CommandConfig {
    fn default() -> Self {
        CommandConfig {
            lvm: LvmOptions::default(),
            lvm_root: BrickRoot::new("/var/lib/aplo/bricks").expect("an absolute root"),
            busy_attempts: 8,
            busy_backoff: Duration::from_millis(250),
        }
    }
}

/// What bricks may use of a new volume group: its free space less 2 %
/// for thin-pool metadata (each brick's pool takes 0.5 % of its size, and
/// at least 8 MiB), so that the space placement counts is really there.
pub fn usable_vg_bytes(free: u64) -> u64 {
    free - free / 50
}

/// Applies effects by running commands on the nodes.
pub struct CommandDriver {
    connections: Connections,
    config: CommandConfig,
    /// The volume options gluster listed, once a node answered.
    option_names: Mutex<Option<Arc<OptionNames>>>,
}

/// Whether a failure means "this node cannot be asked", so that another
/// node of the cluster should be.
fn unreachable(e: &ExecError) -> bool {
    match e {
        ExecError::Spawn { .. } | ExecError::Timeout { .. } => true,
        ExecError::Failed {
            status,
            stderr,
            stdout,
            ..
        } => {
            *status == 255
                || gluster::glusterd_unreachable(stderr)
                || gluster::glusterd_unreachable(&String::from_utf8_lossy(stdout))
        }
    }
}

fn addresses(bricks: &[BrickAddress]) -> Vec<(String, String)> {
    bricks
        .iter()
        .map(|b| (b.host.clone(), b.path.clone()))
        .collect()
}

impl CommandDriver {
    /// A driver reaching nodes through `connections`.
    pub fn new(connections: Connections, config: CommandConfig) -> CommandDriver {
        CommandDriver {
            connections,
            config,
            option_names: Mutex::new(None),
        }
    }

    /// Ask the first node of `via` that answers which volume options its
    /// gluster has (`volume set help-xml`).
    async fn read_option_names(&self, via: &[NodeRecord]) -> Result<OptionNames, DriverError> {
        let cmd = gluster::volume_set_help();
        let mut last = "the cluster has no nodes".to_owned();
        for node in via {
            match self.connections.node(node).run(&cmd).await {
                Ok(out) => {
                    let options = gluster::parse_set_help(&out.stdout).map_err(|source| {
                        DriverError::Gluster {
                            command: cmd.display(),
                            source,
                        }
                    })?;
                    let source = format!("the gluster on {}", node.manage);
                    return Ok(gluster::option_names(&options, source));
                }
                Err(e) if unreachable(&e) => last = e.to_string(),
                Err(e) => return Err(e.into()),
            }
        }
        Err(DriverError::Unreachable {
            what: cmd.display(),
            last,
        })
    }

    /// Run a gluster command on the first node of `via` that answers,
    /// retrying with backoff while gluster reports another transaction.
    async fn gluster(&self, via: &[NodeRecord], cmd: &Cmd) -> Result<Vec<u8>, DriverError> {
        let mut last = "the cluster has no nodes".to_owned();
        for node in via {
            let exec = self.connections.node(node);
            let mut wait = self.config.busy_backoff;
            for attempt in 1..=self.config.busy_attempts.max(1) {
                let stdout = match exec.run(cmd).await {
                    Ok(out) => out.stdout,
                    Err(e) if unreachable(&e) => {
                        last = e.to_string();
                        break;
                    }
                    // Some gluster versions exit non-zero with the XML.
                    Err(ExecError::Failed { stdout, .. })
                        if stdout.windows(11).any(|w| w == b"<cliOutput>") =>
                    {
                        stdout
                    }
                    Err(e) => return Err(e.into()),
                };
                match gluster::parse_outcome(&stdout) {
                    Ok(()) => return Ok(stdout),
                    Err(e) if e.is_busy() && attempt < self.config.busy_attempts => {
                        tracing::info!(node = %node.manage, command = %cmd.display(), ?wait, "gluster is busy; retrying");
                        tokio::time::sleep(wait).await;
                        wait = wait.saturating_mul(2);
                    }
                    Err(source) => {
                        return Err(DriverError::Gluster {
                            command: cmd.display(),
                            source,
                        });
                    }
                }
            }
        }
        Err(DriverError::Unreachable {
            what: cmd.display(),
            last,
        })
    }

    async fn info(&self, target: &Target) -> Result<Option<VolumeInfo>, DriverError> {
        match self
            .gluster(&target.via, &gluster::volume_info(Some(&target.name)))
            .await
        {
            Ok(xml) => {
                let info =
                    gluster::parse_volume_info(&xml).map_err(|source| DriverError::Gluster {
                        command: "volume info".into(),
                        source,
                    })?;
                Ok(info.into_iter().find(|v| v.name == target.name))
            }
            Err(DriverError::Gluster { source, .. }) if source.is_missing_volume() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The volume if it exists and every brick of it is one aplo planned.
    /// A volume of the same name with none of the planned bricks is
    /// someone else's: it is left alone, as if absent. A volume mixing
    /// planned and other bricks is refused.
    async fn owned(&self, target: &Target) -> Result<Option<VolumeInfo>, DriverError> {
        let Some(info) = self.info(target).await? else {
            return Ok(None);
        };
        let ours: BTreeSet<(&str, &str)> = target
            .bricks
            .iter()
            .map(|b| (b.host.as_str(), b.path.as_str()))
            .collect();
        let foreign: Vec<String> = info
            .bricks
            .iter()
            .filter(|b| !ours.contains(&(b.host.as_str(), b.path.as_str())))
            .map(|b| format!("{}:{}", b.host, b.path))
            .collect();
        if foreign.is_empty() {
            Ok(Some(info))
        } else if foreign.len() == info.bricks.len() {
            tracing::warn!(volume = %target.name, "a gluster volume of this name exists but is not aplo's; leaving it alone");
            Ok(None)
        } else {
            Err(DriverError::Refused(format!(
                "gluster volume '{}' has bricks aplo did not create ({}); it is not aplo's to change",
                target.name,
                foreign.join(", ")
            )))
        }
    }

    fn lvm_brick(&self, p: &Placed) -> LvmBrick {
        LvmBrick {
            root: self.config.lvm_root.clone(),
            options: self.config.lvm,
            device: p.device.id,
            brick: p.brick.id,
            volume: p.brick.volume,
            bytes: p.brick.bytes,
            pool_bytes: p.brick.consumed.max(p.brick.bytes),
        }
    }

    fn root(device: &DeviceRecord) -> Result<BrickRoot, DriverError> {
        BrickRoot::new(&device.name).map_err(DriverError::Refused)
    }

    async fn brick(&self, effect: &Effect) -> Result<(), DriverError> {
        let (Effect::CreateBrick(p) | Effect::GrowBrick(p) | Effect::DestroyBrick(p)) = effect
        else {
            unreachable!("only brick effects come here")
        };
        let exec = self.connections.node(&p.node);
        let node: &dyn Executor = exec.as_ref();
        let (brick, volume, bytes) = (p.brick.id, p.brick.volume, p.brick.bytes);
        match (effect, p.device.backend) {
            (Effect::CreateBrick(_), backend) => {
                let dir = match backend {
                    Backend::Loop => {
                        brick::create_loop_brick(
                            node,
                            &Self::root(&p.device)?,
                            brick,
                            volume,
                            bytes,
                        )
                        .await?
                    }
                    Backend::Dir => {
                        brick::create_dir_brick(node, &Self::root(&p.device)?, brick, volume)
                            .await?
                    }
                    Backend::LvmThin => brick::create_lvm_brick(node, &self.lvm_brick(p)).await?,
                };
                if let Some(gid) = p.gid {
                    brick::give_group(node, &dir, gid).await?;
                }
            }
            (Effect::GrowBrick(_), Backend::Loop) => {
                brick::grow_loop_brick(node, &Self::root(&p.device)?, brick, volume, bytes).await?;
            }
            (Effect::GrowBrick(_), Backend::Dir) => {
                brick::create_dir_brick(node, &Self::root(&p.device)?, brick, volume).await?;
            }
            (Effect::GrowBrick(_), Backend::LvmThin) => {
                brick::grow_lvm_brick(node, &self.lvm_brick(p)).await?;
            }
            (_, Backend::Loop) => {
                brick::destroy_loop_brick(node, &Self::root(&p.device)?, brick).await?;
            }
            (_, Backend::Dir) => {
                brick::destroy_dir_brick(node, &Self::root(&p.device)?, brick).await?;
            }
            (_, Backend::LvmThin) => {
                brick::destroy_lvm_brick(node, &self.lvm_brick(p)).await?;
            }
        }
        Ok(())
    }

    async fn prepare(
        &self,
        node: &NodeRecord,
        device: &DeviceRecord,
        wipe: bool,
    ) -> Result<u64, DriverError> {
        let exec = self.connections.node(node);
        let missing = |kind: &str| {
            DriverError::Refused(format!(
                "device {} does not exist on {} (or is not a {kind})",
                device.name, node.manage
            ))
        };
        match device.backend {
            Backend::Loop | Backend::Dir => {
                let root = Self::root(device)?;
                exec.run(&Cmd::new("test").arg("-d").arg(&device.name))
                    .await
                    .map_err(|_| missing("directory"))?;
                exec.run(
                    &Cmd::new("mkdir")
                        .arg("-p")
                        .arg(root.images_dir().display().to_string())
                        .arg(root.mounts_dir().display().to_string()),
                )
                .await?;
                let out = exec
                    .run(
                        &Cmd::new("df")
                            .args(["-B1", "--output=avail"])
                            .arg(&device.name),
                    )
                    .await?;
                let text = String::from_utf8_lossy(&out.stdout);
                let available: u64 = text
                    .lines()
                    .nth(1)
                    .and_then(|l| l.trim().parse().ok())
                    .ok_or_else(|| {
                        DriverError::Refused(format!("cannot read df output: {text}"))
                    })?;
                // A `capacity` tag caps what aplo may use of the directory.
                Ok(tagged_capacity(device)?.map_or(available, |cap| cap.min(available)))
            }
            Backend::LvmThin => {
                let options = self.config.lvm;
                let vg = lvm::vg_name(device.id);
                let find = |out: &[u8]| -> Result<Option<u64>, DriverError> {
                    Ok(lvm::parse_vgs(out)?
                        .into_iter()
                        .find(|g| g.name == vg)
                        .map(|g| g.free))
                };
                if let Some(free) = find(&exec.run(&lvm::vgs(options)).await?.stdout)? {
                    return Ok(usable_vg_bytes(free));
                }
                exec.run(&Cmd::new("test").arg("-b").arg(&device.name))
                    .await
                    .map_err(|_| missing("block device"))?;
                if wipe {
                    exec.run(&Cmd::new("wipefs").args(["-a", &device.name]))
                        .await?;
                }
                exec.run(&lvm::pvcreate(options, &device.name)).await?;
                exec.run(&lvm::vgcreate(options, device.id, &device.name))
                    .await?;
                let free = find(&exec.run(&lvm::vgs(options)).await?.stdout)?
                    .ok_or_else(|| DriverError::Refused(format!("vgcreate did not create {vg}")))?;
                Ok(usable_vg_bytes(free))
            }
        }
    }

    async fn release(&self, node: &NodeRecord, device: &DeviceRecord) -> Result<(), DriverError> {
        let exec = self.connections.node(node);
        match device.backend {
            Backend::Loop | Backend::Dir => {
                let root = Self::root(device)?;
                // Only aplo's empty subdirectories go; the directory stays.
                let _ = exec
                    .run(
                        &Cmd::new("rmdir")
                            .arg(root.images_dir().display().to_string())
                            .arg(root.mounts_dir().display().to_string()),
                    )
                    .await;
                Ok(())
            }
            Backend::LvmThin => {
                let options = self.config.lvm;
                let vg = lvm::vg_name(device.id);
                let groups = lvm::parse_vgs(&exec.run(&lvm::vgs(options)).await?.stdout)?;
                if groups.iter().any(|g| g.name == vg) {
                    exec.run(&lvm::vgremove(options, &vg)).await?;
                    exec.run(&lvm::pvremove(options, &device.name)).await?;
                }
                Ok(())
            }
        }
    }

    async fn apply_effect(&self, effect: &Effect) -> Result<Applied, DriverError> {
        match effect {
            Effect::PrepareDevice { node, device, wipe } => {
                return self
                    .prepare(node, device, *wipe)
                    .await
                    .map(Applied::Capacity);
            }
            Effect::ReleaseDevice { node, device } => self.release(node, device).await?,
            Effect::CreateBrick(_) | Effect::GrowBrick(_) | Effect::DestroyBrick(_) => {
                self.brick(effect).await?;
            }
            Effect::PeerProbe { via, node } => {
                self.gluster(via, &gluster::peer_probe(&node.storage))
                    .await?;
            }
            Effect::PeerDetach { via, node } => {
                match self
                    .gluster(via, &gluster::peer_detach(&node.storage))
                    .await
                {
                    // Detached already (a retry after a crash).
                    Err(DriverError::Gluster { source, .. })
                        if source.kind() == Failure::NotAPeer => {}
                    other => {
                        other?;
                    }
                }
            }
            Effect::CreateVolume {
                target,
                scheme,
                force,
            } => {
                // Try first: on the usual path the name is free. Only when
                // gluster says it exists (a retry after a crash, or someone
                // else's volume) is it compared with the plan.
                let cmd = gluster::volume_create(
                    &target.name,
                    scheme,
                    &addresses(&target.bricks),
                    *force,
                );
                match self.gluster(&target.via, &cmd).await {
                    Ok(_) => {}
                    Err(DriverError::Gluster { source, .. })
                        if source.kind() == Failure::AlreadyExists =>
                    {
                        let same = self.info(target).await?.is_some_and(|info| {
                            let have: Vec<(String, String)> = info
                                .bricks
                                .iter()
                                .map(|b| (b.host.clone(), b.path.clone()))
                                .collect();
                            have == addresses(&target.bricks)
                        });
                        if !same {
                            return Err(DriverError::Refused(format!(
                                "a gluster volume named '{}' already exists and is not the one aplo planned",
                                target.name
                            )));
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            Effect::SetOptions { target, options } => {
                // Setting an option to its value again is harmless; this
                // runs right after the create, or on a volume aplo owns.
                if !options.is_empty() {
                    let cmd = gluster::volume_set_many(&target.name, options)
                        .map_err(|e| DriverError::Refused(e.to_string()))?;
                    self.gluster(&target.via, &cmd).await?;
                }
            }
            Effect::StartVolume { target, force } => {
                match self
                    .gluster(&target.via, &gluster::volume_start(&target.name, *force))
                    .await
                {
                    Err(DriverError::Gluster { source, .. })
                        if !*force && source.kind() == Failure::AlreadyStarted => {}
                    other => {
                        other?;
                    }
                }
            }
            Effect::StopVolume { target } => {
                if let Some(info) = self.owned(target).await?
                    && info.status == "Started"
                {
                    self.gluster(&target.via, &gluster::volume_stop(&target.name))
                        .await?;
                }
            }
            Effect::DeleteVolume { target } => {
                if let Some(info) = self.owned(target).await? {
                    if info.status == "Started" {
                        self.gluster(&target.via, &gluster::volume_stop(&target.name))
                            .await?;
                    }
                    self.gluster(&target.via, &gluster::volume_delete(&target.name))
                        .await?;
                }
            }
            Effect::AddBricks {
                target,
                scheme,
                bricks,
                force,
            } => {
                let info = self.owned(target).await?.ok_or_else(|| {
                    DriverError::Refused(format!("gluster volume '{}' does not exist", target.name))
                })?;
                let present = bricks.iter().all(|b| {
                    info.bricks
                        .iter()
                        .any(|have| have.host == b.host && have.path == b.path)
                });
                if !present {
                    let cmd =
                        gluster::volume_add_brick(&target.name, scheme, &addresses(bricks), *force);
                    self.gluster(&target.via, &cmd).await?;
                }
            }
            Effect::ReplaceBrick { target, old, new } => {
                let info = self.owned(target).await?.ok_or_else(|| {
                    DriverError::Refused(format!("gluster volume '{}' does not exist", target.name))
                })?;
                let has = |b: &BrickAddress| {
                    info.bricks
                        .iter()
                        .any(|have| have.host == b.host && have.path == b.path)
                };
                // Done already (a retry after a crash): nothing to do.
                if has(new) && !has(old) {
                    return Ok(Applied::Done);
                }
                if !has(old) {
                    return Err(DriverError::Refused(format!(
                        "gluster volume '{}' has neither brick {old} nor {new}",
                        target.name
                    )));
                }
                let cmd =
                    gluster::volume_replace_brick(&target.name, &old.to_string(), &new.to_string());
                self.gluster(&target.via, &cmd).await?;
            }
            Effect::Rebalance { target } => {
                match self
                    .gluster(&target.via, &gluster::rebalance_start(&target.name))
                    .await
                {
                    Err(DriverError::Gluster { source, .. })
                        if source.kind() == Failure::RebalanceRunning => {}
                    other => {
                        other?;
                    }
                }
            }
            Effect::SetQuota { target, bytes } => {
                let info = self.owned(target).await?.ok_or_else(|| {
                    DriverError::Refused(format!("gluster volume '{}' does not exist", target.name))
                })?;
                if info.options.get("features.quota").map(String::as_str) != Some("on") {
                    self.gluster(&target.via, &gluster::quota_enable(&target.name))
                        .await?;
                }
                self.gluster(&target.via, &gluster::quota_limit(&target.name, *bytes))
                    .await?;
            }
        }
        Ok(Applied::Done)
    }
}

impl Driver for CommandDriver {
    fn apply<'a>(&'a self, effect: &'a Effect) -> BoxFuture<'a, Result<Applied, DriverError>> {
        Box::pin(async move {
            let result = self.apply_effect(effect).await;
            match &result {
                Ok(_) => tracing::debug!(%effect, "applied"),
                Err(e) => tracing::warn!(%effect, error = %e, "effect failed"),
            }
            result
        })
    }

    /// Asked of the first node that answers, once: the answer is kept for
    /// every later call (nodes of one deployment run one gluster). Until a
    /// node answers, each call asks again and falls back on the built-in
    /// list.
    fn option_names<'a>(&'a self, via: &'a [NodeRecord]) -> BoxFuture<'a, Arc<OptionNames>> {
        Box::pin(async move {
            let kept = self
                .option_names
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let Some(names) = kept {
                return names;
            }
            match self.read_option_names(via).await {
                Ok(names) => {
                    tracing::info!(
                        options = names.len(),
                        source = names.source(),
                        "read gluster's volume options"
                    );
                    let names = Arc::new(names);
                    *self.option_names.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(names.clone());
                    names
                }
                Err(e) => {
                    let builtin = gluster::builtin_options();
                    tracing::warn!(error = %e, source = builtin.source(), "cannot read gluster's volume options; checking options against the built-in list");
                    builtin
                }
            }
        })
    }

    fn peers<'a>(&'a self, via: &'a [NodeRecord]) -> BoxFuture<'a, Result<Vec<Peer>, DriverError>> {
        Box::pin(async move {
            let xml = self.gluster(via, &gluster::pool_list()).await?;
            gluster::parse_pool_list(&xml).map_err(|source| DriverError::Gluster {
                command: "pool list".into(),
                source,
            })
        })
    }

    fn volumes<'a>(
        &'a self,
        via: &'a [NodeRecord],
    ) -> BoxFuture<'a, Result<Vec<VolumeInfo>, DriverError>> {
        Box::pin(async move {
            let xml = self.gluster(via, &gluster::volume_info(None)).await;
            match xml {
                Ok(xml) => {
                    gluster::parse_volume_info(&xml).map_err(|source| DriverError::Gluster {
                        command: "volume info".into(),
                        source,
                    })
                }
                // gluster without --xml answers "No volumes present" as a
                // failure.
                Err(DriverError::Gluster { source, .. }) if source.kind() == Failure::NoVolumes => {
                    Ok(Vec::new())
                }
                Err(e) => Err(e),
            }
        })
    }

    fn volume_status<'a>(
        &'a self,
        via: &'a [NodeRecord],
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<BrickStatus>, DriverError>> {
        Box::pin(async move {
            let xml = self.gluster(via, &gluster::volume_status(name)).await?;
            gluster::parse_volume_status(&xml).map_err(|source| DriverError::Gluster {
                command: "volume status".into(),
                source,
            })
        })
    }

    fn heal_info<'a>(
        &'a self,
        via: &'a [NodeRecord],
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<gluster::HealInfo>, DriverError>> {
        Box::pin(async move {
            let xml = self.gluster(via, &gluster::volume_heal_info(name)).await?;
            gluster::parse_heal_info(&xml).map_err(|source| DriverError::Gluster {
                command: "volume heal info".into(),
                source,
            })
        })
    }

    fn device_facts<'a>(
        &'a self,
        node: &'a NodeRecord,
        device: &'a DeviceRecord,
    ) -> BoxFuture<'a, Result<DeviceFacts, DriverError>> {
        Box::pin(async move {
            let exec = self.connections.node(node);
            let root = match device.backend {
                Backend::LvmThin => self.config.lvm_root.clone(),
                Backend::Loop | Backend::Dir => Self::root(device)?,
            };
            let mut facts = DeviceFacts::default();
            let mounts: BTreeSet<String> = brick::mount_points(exec.as_ref())
                .await?
                .into_iter()
                .collect();
            match device.backend {
                Backend::LvmThin => {
                    let vg = lvm::vg_name(device.id);
                    let lvs = lvm::parse_lvs(&exec.run(&lvm::lvs(self.config.lvm)).await?.stdout)?;
                    facts.bricks = lvs
                        .iter()
                        .filter(|l| l.vg == vg)
                        .filter_map(|l| {
                            l.name
                                .strip_prefix("brick_")
                                .or_else(|| l.name.strip_prefix("tp_"))
                                .and_then(|id| id.parse().ok())
                        })
                        .collect();
                }
                Backend::Loop | Backend::Dir => {
                    facts.bricks = brick::bricks_under(exec.as_ref(), &root)
                        .await?
                        .into_iter()
                        .collect();
                }
            }
            if device.backend != Backend::Dir {
                facts.mounted = facts
                    .bricks
                    .iter()
                    .copied()
                    .filter(|id| mounts.contains(&root.mount_point(*id).display().to_string()))
                    .collect();
            }
            Ok(facts)
        })
    }
}
