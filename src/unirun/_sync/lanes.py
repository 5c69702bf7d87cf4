"""A lane: a robust mutex over shared words, and the journal of its commits.

A change to several words at once goes to the lane's journal first; the
journal's length is the one store that commits it; then the words change. A
holder killed in between leaves the journal for whoever takes the lane next,
who finishes the change before anything else: what a killed holder half-did is
never seen. Most primitives have one lane; the queue has two, so that putters
and getters never wait for each other.
"""

from __future__ import annotations

import struct
from itertools import chain
from typing import TYPE_CHECKING, Final

from .mutex import Mutex

if TYPE_CHECKING:
    from .shm import Segment

__all__ = ["JOURNAL_WORDS", "Lane"]

#: Up to 8 (index, value) pairs per commit.
_MOST_PAIRS: Final = 8
#: Words a lane's journal takes: its length, then the pairs.
JOURNAL_WORDS: Final = 1 + 2 * _MOST_PAIRS
_PAIRS: Final = [struct.Struct(f"{2 * pairs}q") for pairs in range(_MOST_PAIRS + 1)]


class Lane(Mutex):
    """A mutex on ``fd`` that commits changes to ``words`` all or none.

    ``journal`` is the word where its journal starts in ``segment`` and
    ``held`` the word of its "held" hint.
    """

    __slots__ = ("_at", "_map", "words")

    def __init__(
        self, segment: Segment, fd: int, journal: int, held: int, words: memoryview
    ) -> None:
        super().__init__(
            fd, segment.words(held, 1), segment.words(journal, JOURNAL_WORDS)
        )
        self._at = 8 * (journal + 1)
        self._map = segment.map
        self.words = words

    def pending(self) -> bool:
        """Whether a commit is unfinished (its holder is at it, or dead)."""
        return bool(self._journal[0])

    def commit(self, *pairs: tuple[int, int]) -> None:
        """Set ``words[index] = value`` for each pair, all or none if killed.

        The words change in the order given: a reader that does not hold the
        mutex sees a prefix of the change.
        """
        if len(pairs) > 1:
            _PAIRS[len(pairs)].pack_into(self._map, self._at, *chain(*pairs))
            self._journal[0] = len(pairs)  # the commit point
        words = self.words
        for index, value in pairs:
            words[index] = value
        self._journal[0] = 0

    def commit2(self, first: int, value1: int, second: int, value2: int) -> None:
        """:meth:`commit` of two words, without the tuples (for hot paths)."""
        _PAIRS[2].pack_into(self._map, self._at, first, value1, second, value2)
        journal, words = self._journal, self.words
        journal[0] = 2
        words[first] = value1
        words[second] = value2
        journal[0] = 0

    def _replay(self) -> None:
        journal, words = self._journal, self.words
        for number in range(min(journal[0], _MOST_PAIRS)):
            words[journal[1 + 2 * number]] = journal[2 + 2 * number]
        journal[0] = 0
