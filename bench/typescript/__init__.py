"""The workloads with their handlers written in TypeScript (bench/typescript/src/main.ts, on
Restate's TypeScript SDK), one endpoint process served to restate-pg and to restate-server in
turn: `python -m bench.typescript` (see bench/README.md, "TypeScript handlers")."""
