"""`python -m schema`: writes the SDL of the packaged catalogue to schema.graphql."""

from pathlib import Path

from catalogue import load_catalogue
from schema.build import build_schema

if __name__ == "__main__":
    out = Path(__file__).resolve().parents[1] / "schema.graphql"
    out.write_text(build_schema(load_catalogue()).as_str() + "\n", encoding="utf-8")
    print(f"wrote {out}")
