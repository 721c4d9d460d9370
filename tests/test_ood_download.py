"""An offline download of an OOD set leaves the user's data folder as it was: no empty raw/ folder,
no partial file."""

import io

import bnn_impls.ood_data as ood


def test_an_offline_machine_gets_a_reason_and_no_new_folder(tmp_path, monkeypatch):
    def offline(url, timeout):
        raise OSError("Name or service not known")

    monkeypatch.setattr(ood.urllib.request, "urlopen", offline)
    images, reason = ood.load_external(ood.EXTERNAL_SETS[0], str(tmp_path))
    assert images is None and "Name or service not known" in reason
    assert list(tmp_path.iterdir()) == []


def test_a_download_cut_short_leaves_no_partial_file(tmp_path, monkeypatch):
    class Cut(io.RawIOBase):
        def readinto(self, buffer):
            raise OSError("connection reset")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(ood.urllib.request, "urlopen", lambda url, timeout: Cut())
    images, reason = ood.load_external(ood.EXTERNAL_SETS[0], str(tmp_path))
    assert images is None and "connection reset" in reason
    raw = tmp_path / ood.EXTERNAL_SETS[0].folder / "raw"
    assert list(raw.iterdir()) == []
