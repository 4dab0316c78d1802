"""gitstore: Quire's storage layer, where every document is a bare Git repository.

Pure library: depends only on the standard library and pygit2, so it can be used and
tested without the web app.
"""

__all__ = [
    "Author",
    "BlameLine",
    "BranchExists",
    "BranchInfo",
    "CannotDeleteDefaultBranch",
    "CannotRenameDefaultBranch",
    "Change",
    "CommitInfo",
    "ConflictFile",
    "ConflictRegion",
    "Delete",
    "Diff",
    "DiffLine",
    "Document",
    "DocumentExists",
    "DocumentNotFound",
    "FileContent",
    "FileDiff",
    "FileMerge",
    "GitStoreError",
    "HistoryPage",
    "Hunk",
    "InvalidPath",
    "InvalidRefName",
    "MergeConflict",
    "MergePreview",
    "MergeStyle",
    "NotFastForward",
    "NothingToCommit",
    "PathNotFound",
    "Put",
    "RefConflict",
    "RefNotFound",
    "Rename",
    "SaveResult",
    "Store",
    "TagExists",
    "TagInfo",
    "TreeEntry",
    "WordSpan",
    "merge_text",
    "normalize_path",
    "word_diff",
    # smart HTTP: pkt-lines and git processes
    "FLUSH_PKT",
    "GitService",
    "ProtocolError",
    "PushRequest",
    "RefStatus",
    "RefUpdate",
    "ServiceProcess",
    "ZERO_OID",
    "advertise_refs",
    "build_report",
    "cooperative_popen",
    "encode_pkt",
    "parse_git_protocol",
    "parse_report",
    "read_push_commands",
    "validate_pkt_stream",
    # the branch graph and whole-tree archives
    "ArchiveError",
    "GraphEdge",
    "GraphNode",
    "GraphPage",
    "Segment",
    "archive",
    "graph_layout",
    # resumable history walks
    "HistoryWalk",
    "InvalidCursor",
    # repository upkeep
    "MaintenanceError",
    "MaintenanceResult",
    "maintain",
]

from .archive import ArchiveError, archive
from .diffing import word_diff
from .document import Document, HistoryWalk
from .errors import (
    BranchExists,
    CannotDeleteDefaultBranch,
    CannotRenameDefaultBranch,
    DocumentExists,
    DocumentNotFound,
    GitStoreError,
    InvalidCursor,
    InvalidPath,
    InvalidRefName,
    MergeConflict,
    NotFastForward,
    NothingToCommit,
    PathNotFound,
    RefConflict,
    RefNotFound,
    TagExists,
)
from .graph import GraphEdge, GraphNode, GraphPage, Segment
from .graph import layout as graph_layout
from .maintenance import MaintenanceError, MaintenanceResult, maintain
from .merging import ConflictRegion, FileMerge, MergePreview, MergeStyle, merge_text
from .paths import normalize_path
from .pickaxe import phrase_changes as phrase_changes
from .protocol import (
    FLUSH_PKT,
    ZERO_OID,
    ProtocolError,
    PushRequest,
    RefStatus,
    RefUpdate,
    build_report,
    encode_pkt,
    parse_report,
    read_push_commands,
    validate_pkt_stream,
)
from .store import Store
from .transport import (
    GitService,
    ServiceProcess,
    advertise_refs,
    cooperative_popen,
    parse_git_protocol,
)
from .types import (
    Author,
    BlameLine,
    BranchInfo,
    Change,
    CommitInfo,
    ConflictFile,
    Delete,
    Diff,
    DiffLine,
    FileContent,
    FileDiff,
    HistoryPage,
    Hunk,
    Put,
    Rename,
    SaveResult,
    TagInfo,
    TreeEntry,
    WordSpan,
)
