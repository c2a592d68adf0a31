"""The command line: listing cases, and user errors as one message with exit code 2."""

from opbench.cli import main


def test_list_filters_by_observation(capsys):
    assert main(["list", "-o", "1"]) == 0
    out = capsys.readouterr().out
    assert "obs1/patch_embed/deit_k16s16/c384" in out and "obs2/" not in out
    assert "MMACs" in out


def test_list_by_glob(capsys):
    assert main(["list", "--cases", "obs4/act/*c1792*"]) == 0
    out = capsys.readouterr().out
    assert out.count("obs4/act/") == 5


def test_bad_selection_is_a_clear_error(capsys):
    assert main(["list", "-o", "9"]) == 2
    err = capsys.readouterr().err
    assert "unknown suite 'obs9'" in err and "Traceback" not in err
    assert main(["list", "--cases", "nothing/*"]) == 2
    assert "no case matches" in capsys.readouterr().err


def test_an_empty_glob_is_refused_not_read_as_every_case(capsys):
    for command in (["list"], ["export", "--backend", "onnx"]):
        try:
            code = main([*command, "--cases", " "])
        except SystemExit as exc:
            code = exc.code
        assert code == 2 and "an empty glob" in capsys.readouterr().err


def test_list_by_suite_and_the_suites_themselves(capsys):
    assert main(["list", "--suite", "overhead"]) == 0
    assert "overhead/floor/add_one" in capsys.readouterr().out
    assert main(["list", "--suites"]) == 0
    out = capsys.readouterr().out
    assert "obs1" in out and "observation" in out and "overhead" in out
