// Parses and analyzes KQL queries with Microsoft's Kusto.Language (the parser and semantic
// analyzer Azure Data Explorer, Log Analytics and the Kusto editors use), offline, against the
// columns of the Application Insights tables the workbook reads.
//
// Input (stdin): [{ "name": ..., "query": ... }]. Output (stdout): [{ "name": ..., "diagnostics":
// ["Error: ... @offset", ...] }]: every diagnostic, errors and warnings alike.
'use strict';
const path = require('path');
const dir = path.join(__dirname, 'node_modules', '@kusto', 'language-service-next');
require(path.join(dir, 'bridge.min.js'));
require(path.join(dir, 'Kusto.Language.Bridge.min.js'));
const K = globalThis.Kusto.Language;
const S = K.Symbols;

// The columns shared by every Application Insights table queried through the component
// (classic schema, as a workbook scoped to the component sees them), then each table's own.
const common =
  'timestamp:datetime, itemType:string, customDimensions:dynamic, customMeasurements:dynamic, ' +
  'operation_Name:string, operation_Id:string, operation_ParentId:string, operation_SyntheticSource:string, ' +
  'session_Id:string, user_Id:string, user_AuthenticatedId:string, user_AccountId:string, ' +
  'application_Version:string, client_Type:string, client_IP:string, cloud_RoleName:string, ' +
  'cloud_RoleInstance:string, appId:string, appName:string, iKey:string, sdkVersion:string, ' +
  'itemId:string, itemCount:int';
const tables = [
  ['requests', 'id:string, source:string, name:string, url:string, success:bool, resultCode:string, duration:real, performanceBucket:string'],
  ['dependencies', 'id:string, target:string, type:string, name:string, data:string, success:bool, resultCode:string, duration:real, performanceBucket:string'],
].map(([name, own]) => new S.TableSymbol.$ctor7(name, `(${own}, ${common})`, null));
const globals = K.GlobalState.Default.WithDatabase(new S.DatabaseSymbol.$ctor2('appinsights', null, tables));

const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const results = input.map(({ name, query }) => {
  const diagnostics = K.KustoCode.ParseAndAnalyze(query, globals).GetDiagnostics();
  const found = [];
  for (let i = 0; i < diagnostics.Count; i++) {
    const d = diagnostics.getItem(i);
    found.push(`${d.Severity}: ${d.Message} @${d.Start}`);
  }
  return { name, diagnostics: found };
});
process.stdout.write(JSON.stringify(results));
