/**
 * Component boundaries (DESIGN.md §2): namesrv/, broker/ and gateway/ never
 * import each other — they meet only through proto/ — and common/ never
 * imports a component. No import cycles anywhere.
 */
const components = ['namesrv', 'broker', 'gateway'];

module.exports = {
  forbidden: [
    ...components.map((from) => ({
      name: `${from}-imports-other-component`,
      comment: `${from}/ may not import another component; share code through common/ or proto/`,
      severity: 'error',
      from: { path: `^${from}/` },
      to: { path: `^(${components.filter((c) => c !== from).join('|')})/` },
    })),
    {
      name: 'common-imports-component',
      comment: 'common/ is shared by every component and must not depend on one',
      severity: 'error',
      from: { path: '^common/' },
      to: { path: '^(namesrv|broker|gateway|cli)/' },
    },
    {
      name: 'components-import-cli',
      comment: 'only the command-line layer may assemble components',
      severity: 'error',
      from: { path: '^(namesrv|broker|gateway)/' },
      to: { path: '^cli/' },
    },
    {
      name: 'no-circular',
      comment: 'import cycles make start-up order and testing fragile',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|dist|common/generated)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
