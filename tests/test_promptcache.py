"""The store of saved prompt states: longest prefix, least recently used out, pinned states kept;
system prompts' states on disk for the next process."""

import os

from rag.models.promptcache import PromptStates, StateFiles


def test_the_longest_saved_prefix_is_found_and_the_last_segment_always_left_to_read():
    states = PromptStates(max_bytes=1000)
    states.put([1], b"s")
    states.put([1, 2, 3], b"sss")
    assert states.longest([[1], [2, 3], [4]]) == (2, b"sss")
    assert states.longest([[1], [2, 3]]) == (1, b"s")  # [1, 2, 3] is the whole prompt: its last segment is read
    assert states.longest([[1, 2], [3]]) is None  # [1] is no segment boundary of this prompt
    assert states.longest([[9], [1]]) is None


def test_least_recently_used_states_go_beyond_the_budget_and_oversized_ones_are_not_kept():
    states = PromptStates(max_bytes=10)
    states.put([1], b"aaaa")
    states.put([2], b"bbbb")
    assert states.longest([[1], [0]]) == (1, b"aaaa")  # [1] used: [2] is now the least recent
    states.put([3], b"cccc")
    assert states.longest([[2], [0]]) is None and states.longest([[1], [0]]) and states.longest([[3], [0]])
    states.put([4], b"x" * 11)
    assert states.longest([[4], [0]]) is None and len(states) == 2


def test_pinned_states_outlive_the_budget_and_forget_but_only_up_to_their_limit():
    states = PromptStates(max_bytes=4)
    states.put([0], b"system", pin=True)  # larger than the budget, kept all the same
    states.put([1], b"aaaa")
    states.forget()
    assert states.longest([[0], [5]]) == (1, b"system") and states.longest([[1], [5]]) is None
    for n in range(PromptStates.MAX_PINNED + 5):
        states.put([100 + n], b"p", pin=True)
    # [0] and 15 more pinned; the other 5 went to the budgeted store, which holds 4 bytes of them
    assert len(states) == PromptStates.MAX_PINNED + 4


def test_the_prompt_cache_size_comes_from_the_environment_or_is_refused_in_one_line(monkeypatch):
    import pytest

    from rag.app.pipeline import prompt_cache_mb
    from rag.errors import RagError
    from rag.models.llama import PROMPT_CACHE_MB

    monkeypatch.delenv("RAG_PROMPT_CACHE_MB", raising=False)
    assert prompt_cache_mb() == PROMPT_CACHE_MB
    monkeypatch.setenv("RAG_PROMPT_CACHE_MB", "0")
    assert prompt_cache_mb() == 0
    monkeypatch.setenv("RAG_PROMPT_CACHE_MB", "lots")
    with pytest.raises(RagError, match="whole number of megabytes"):
        prompt_cache_mb()


IDENTITY = {"model": "qwen.gguf@abc", "runtime": "llama-cpp-python 0.3.36 (AVX2)", "n_ctx": 4096}


def test_state_files_are_read_back_only_for_the_same_model_build_context_and_tokens(tmp_path):
    files = StateFiles(tmp_path, IDENTITY)
    files.save([1, 2, 3], b"\x00state\n")
    assert files.load([1, 2, 3]) == b"\x00state\n"
    assert files.load([1, 2]) is None
    for changed in ({"model": "other.gguf@def"}, {"runtime": "llama-cpp-python 0.3.36 (AVX512)"}, {"n_ctx": 2048}):
        assert StateFiles(tmp_path, {**IDENTITY, **changed}).load([1, 2, 3]) is None
    (path,) = tmp_path.glob("*.state")
    assert path.read_bytes().startswith(b'{"format": "rag-prompt-state"')


def test_a_damaged_state_file_is_not_used_and_an_unwritable_folder_is_no_error(tmp_path):
    files = StateFiles(tmp_path, IDENTITY)
    files.save([7], b"state")
    (path,) = tmp_path.glob("*.state")
    path.write_bytes(path.read_bytes()[:20])  # torn: the header cut short
    assert files.load([7]) is None
    path.write_bytes(b"")
    assert files.load([7]) is None
    files.save([7], b"state")
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # a bit of the state flipped
    path.write_bytes(bytes(data))
    assert files.load([7]) is None
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    StateFiles(blocked / "states", IDENTITY).save([7], b"state")  # nothing kept, nothing raised
    assert StateFiles(blocked / "states", IDENTITY).load([7]) is None


def test_only_the_newest_state_files_are_kept(tmp_path):
    files = StateFiles(tmp_path, IDENTITY, keep=3)
    for n in range(5):
        files.save([n], b"state")
        os.utime(files._path([n]), (1000 + n, 1000 + n))  # mtimes a second apart, whatever the file system's resolution
    assert [files.load([n]) for n in range(5)] == [None, None, b"state", b"state", b"state"]
