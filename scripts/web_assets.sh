#!/usr/bin/env bash
# Install the book's third-party JavaScript from web/package-lock.json and copy what the pages load
# into web/site/vendor/, which _config.yml hands to Sphinx as html_extra_path: the files land in
# _build/html/vendor/ and the pages read fully offline (no CDN for MathJax, RequireJS or widgets).
# Nothing under web/node_modules or web/site is committed.
set -euo pipefail
cd "$(dirname "$0")/../web"
command -v npm >/dev/null || { echo "web_assets.sh: npm not found (install Node.js 18+ with npm)" >&2; exit 2; }

npm ci --no-audit --no-fund

nm=node_modules
vendor=site/vendor
rm -rf site
mkdir -p "$vendor/mathjax" "$vendor/requirejs" "$vendor/html-manager"

# MathJax 3: the whole es5 folder, because the combined component autoloads TeX extensions
# (input/tex/extensions), its CHTML fonts (output/chtml/fonts) and, from the menu, a11y and sre.
cp -R "$nm/mathjax/es5/." "$vendor/mathjax/"
cp "$nm/mathjax/LICENSE" "$vendor/mathjax/"

cp "$nm/requirejs/require.js" "$vendor/requirejs/"   # its licence is in the file header

# html-manager: embed-amd.js bundles base, controls and output widgets; the Font Awesome files it
# references are resolved next to the script (webpack public path = the script's folder).
hm="$nm/@jupyter-widgets/html-manager"
cp "$hm/dist/embed-amd.js" "$vendor/html-manager/"
cp "$hm"/dist/*.{woff2,woff,ttf,eot,svg} "$vendor/html-manager/"

# Ours (committed in web/): points RequireJS at the files above and bridges ipywidgets to MathJax 3.
cp widgets-setup.js "$vendor/"

echo "web_assets.sh: $(find site -type f | wc -l) files, $(du -sh site | cut -f1) in web/site/vendor"
