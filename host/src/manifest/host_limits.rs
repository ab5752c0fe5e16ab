//! `[node]` limits on what the node keeps and runs outside every process: shared tables
//! (`max_tables`, `max_tables_per_process`, `max_table_bytes`), SQL statements
//! (`max_sql_statements`), the files guests hold open (`max_guest_files`) and the instances
//! made ahead of spawns (`spare_instances`).

use super::ManifestError;
use super::parse::Parser;
use super::raw::RawNode;
use crate::node::MAX_SPARE_INSTANCES;

/// The most SQL statements the manifest lets run at once: half of tokio's default 512
/// blocking threads, which WASI's file I/O shares, so that statements can never take them
/// all.
pub const MAX_SQL_STATEMENTS: usize = 256;

/// The `[node]` table and SQL limits a manifest sets; `None` keeps the node's default.
#[derive(Debug, Default)]
pub(super) struct HostLimits {
    pub(super) max_tables: Option<usize>,
    pub(super) max_tables_per_process: Option<usize>,
    pub(super) max_table_bytes: Option<usize>,
    pub(super) max_sql_statements: Option<usize>,
    pub(super) max_guest_files: Option<usize>,
    pub(super) spare_instances: Option<usize>,
}

impl Parser<'_> {
    /// Each positive; table bytes at most this machine's memory (more could never be held,
    /// so it is a mistake, not a limit); SQL statements at most [`MAX_SQL_STATEMENTS`];
    /// guest files at most `MAX_GUEST_FILES` (not this machine's limit: the manifest may run
    /// on another).
    pub(super) fn host_limits(&self, node: Option<&RawNode>) -> Result<HostLimits, ManifestError> {
        let Some(node) = node else {
            return Ok(HostLimits::default());
        };
        let as_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let max_table_bytes = self
            .positive(&node.max_table_bytes, "max_table_bytes")?
            .map(as_usize);
        if let (Some(bytes), Some(v), Some(memory)) =
            (max_table_bytes, &node.max_table_bytes, physical_memory())
            && bytes > memory
        {
            return Err(self.error(
                &v.span(),
                "node.max_table_bytes",
                format!("at most {memory} bytes, this machine's memory"),
            ));
        }
        let max_sql_statements = self
            .positive(&node.max_sql_statements, "max_sql_statements")?
            .map(as_usize);
        if let (Some(n), Some(v)) = (max_sql_statements, &node.max_sql_statements)
            && n > MAX_SQL_STATEMENTS
        {
            return Err(self.error(
                &v.span(),
                "node.max_sql_statements",
                format!("at most {MAX_SQL_STATEMENTS}, half of the node's blocking threads"),
            ));
        }
        let max_guest_files = self
            .positive(&node.max_guest_files, "max_guest_files")?
            .map(as_usize);
        // Not this machine's limit: a manifest checked on one machine runs on another, whose
        // node lowers the value to what its limit leaves guests (with a warning).
        if let (Some(n), Some(v)) = (max_guest_files, &node.max_guest_files)
            && n > crate::descriptors::MAX_GUEST_FILES
        {
            return Err(self.error(
                &v.span(),
                "node.max_guest_files",
                format!(
                    "at most {}; a node lowers it to what its open-file limit leaves guests",
                    crate::descriptors::MAX_GUEST_FILES
                ),
            ));
        }
        // Zero is meaningful here: no spares.
        let spare_instances = node
            .spare_instances
            .as_ref()
            .map(|v| as_usize(*v.get_ref()));
        if let (Some(n), Some(v)) = (spare_instances, &node.spare_instances)
            && n > MAX_SPARE_INSTANCES
        {
            return Err(self.error(
                &v.span(),
                "node.spare_instances",
                format!("at most {MAX_SPARE_INSTANCES}"),
            ));
        }
        Ok(HostLimits {
            max_tables: self.positive(&node.max_tables, "max_tables")?.map(as_usize),
            max_tables_per_process: self
                .positive(&node.max_tables_per_process, "max_tables_per_process")?
                .map(as_usize),
            max_table_bytes,
            max_sql_statements,
            max_guest_files,
            spare_instances,
        })
    }
}

/// This machine's physical memory in bytes, if the system says.
fn physical_memory() -> Option<usize> {
    // SAFETY: sysconf only reads system parameters.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let pages = usize::try_from(pages).ok().filter(|&p| p > 0)?;
    let page = usize::try_from(page).ok().filter(|&p| p > 0)?;
    Some(pages.saturating_mul(page))
}
