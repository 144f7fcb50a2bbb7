"""A venv that borrows this one's installed packages through a `.pth` line, instead of
installing them again. A folder a `.pth` line names is not a site folder, so the `.pth` files
inside it (this project's own editable install among them) are not run: the new venv sees
the libraries, but not this project."""

from __future__ import annotations

import site
import subprocess
import venv
from pathlib import Path


def borrowing_venv(environment: Path, with_pip: bool = False) -> Path:
    """The venv at `environment` (made if missing); its interpreter."""
    python = environment / "bin" / "python"
    if not python.exists():
        venv.create(environment, with_pip=with_pip, symlinks=True)
        purelib = subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        (Path(purelib) / "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return python
