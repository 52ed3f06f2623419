"""The example notebook runs top to bottom against the shipped model.

It walks the classifier, the spaCy component and the annotation loop, so each
of those must work as the notebook shows it.
"""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "quickstart.ipynb"


def test_example_notebook_executes():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o for o in outputs if "text/html" in o.get("data", {})]
    assert any("net stance" in o["data"]["text/html"] for o in html)
    sources = "\n".join(cell.source for cell in notebook.cells)
    assert 'nlp.add_pipe("mineral_stance")' in sources and "nlp.pipe(" in sources
    assert "suggest(" in sources and "write_export(" in sources and "import_export(" in sources
    shown = "\n".join(
        o.get("data", {}).get("text/html", "") + o.get("data", {}).get("text/plain", "")
        for o in outputs
    )
    assert "label-studio-user-1" in shown  # the imported records, with their annotator
    assert "<mark" in shown  # the displaCy rendering of a labelled doc
