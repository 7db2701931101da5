//! How the driver reaches a node: the default reach, and per-node transports
//! that override it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::exec::command::{NodeExecutor, Transport};
use crate::model::storage::NodeRecord;

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
