"""Agreement ids in the file follow the envelope's rule: what the file names, the wire accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import ConfigError, load_config
from service.protocol.envelope import envelope_errors
from tests.unit.config.configfiles import ConfigDir, make_config_dir, replace_once


@pytest.fixture
def cdir(tmp_path: Path) -> ConfigDir:
    return make_config_dir(tmp_path)


@pytest.mark.parametrize("bad", ["kz.uz_2019", "KZ-UZ-2019", "-kz-uz", "kz uz"])
def test_an_agreement_id_the_envelope_refuses_is_refused_in_the_file(
    cdir: ConfigDir, bad: str
) -> None:
    text = replace_once(cdir.base_text(), "  - id: kz-uz-2019", f'  - id: "{bad}"')
    text = text.replace("agreements: [kz-uz-2019]", f'agreements: ["{bad}"]')
    with pytest.raises(ConfigError) as info:
        load_config(cdir.write(text), env={})
    assert "an agreement id such as kz-uz-2019" in str(info.value)
    assert any(e["path"] == "/agreement" for e in envelope_errors({"agreement": bad}))


def test_every_agreement_id_the_file_accepts_passes_the_envelope(cdir: ConfigDir) -> None:
    cfg = load_config(cdir.write(cdir.base_text()), env={})
    for agreement in cfg.agreements:
        assert not [
            e for e in envelope_errors({"agreement": agreement.id}) if e["path"] == "/agreement"
        ]
