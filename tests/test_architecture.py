"""The package's import graph: no circle anywhere (the layer order itself is
import-linter's contract in pyproject.toml, run by ``make test`` as ``lint-imports``)."""

from __future__ import annotations

import grimp


def test_no_import_circle() -> None:
    graph = grimp.build_graph("mixmax_nb", exclude_type_checking_imports=True)
    circles = sorted(
        {
            tuple(chain)
            for module in graph.modules
            for imported in graph.find_modules_directly_imported_by(module)
            if (chain := graph.find_shortest_chain(importer=imported, imported=module))
        }
    )
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles[:5])
