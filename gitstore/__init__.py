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
    "Change",
    "CommitInfo",
    "ConflictFile",
    "Delete",
    "Diff",
    "DiffLine",
    "Document",
    "DocumentExists",
    "DocumentNotFound",
    "FileContent",
    "FileDiff",
    "GitStoreError",
    "HistoryPage",
    "Hunk",
    "InvalidPath",
    "InvalidRefName",
    "MergeConflict",
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
    "normalize_path",
    "word_diff",
]

from .diffing import word_diff
from .document import Document
from .errors import (
    BranchExists,
    CannotDeleteDefaultBranch,
    DocumentExists,
    DocumentNotFound,
    GitStoreError,
    InvalidPath,
    InvalidRefName,
    MergeConflict,
    NothingToCommit,
    PathNotFound,
    RefConflict,
    RefNotFound,
    TagExists,
)
from .paths import normalize_path
from .store import Store
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
