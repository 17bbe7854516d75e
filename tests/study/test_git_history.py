"""mdmtn.study.git_history against a real git repository: ancestry both ways, and no history outside one."""

from mdmtn.study.git_history import descends, git, has_history


def test_descends_follows_real_ancestry_and_has_history_needs_a_repository(tmp_path):
    repo = tmp_path / "r"
    repo.mkdir()
    assert not has_history(repo)
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "t@t"), git(repo, "config", "user.name", "t")
    commits = []
    for i in range(2):
        (repo / "f").write_text(str(i))
        git(repo, "add", "f"), git(repo, "commit", "-qm", str(i))
        commits.append(git(repo, "rev-parse", "--short", "HEAD").stdout.strip())
    assert has_history(repo)
    assert descends(repo, commits[0], commits[1]) and descends(repo, commits[1], commits[1])
    assert not descends(repo, commits[1], commits[0]) and not descends(repo, commits[0], None)
    assert not descends(repo, commits[0], "0" * 12)  # a commit this history lacks
