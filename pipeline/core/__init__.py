"""What every stage needs: typed params, output paths, typed hand-offs, errors, base-model resolution."""
