// The Azure Monitor workbook "Identity propagation": per chat turn (one trace), each hop's user,
// token audience, grant and outcome, and refusals by reason over time, read from the spans the
// services send to Application Insights. Its definition is infra/workbook/identity-propagation.json;
// hooks/postprovision/tests/workbook.rs checks its shape, its KQL and the attributes it reads.

@description('Azure region of the workbook.')
param location string

@description('Tags applied to the workbook.')
param tags object

@description('Name of the Application Insights component (same resource group) the workbook queries.')
param applicationInsightsName string

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name must be a GUID; this one is stable per component, so a second provision
  // updates the workbook rather than adding another.
  name: guid(applicationInsights.id, 'identity-propagation')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'Identity propagation'
    category: 'workbook'
    // Listed under the component's Workbooks, and its queries run against the component.
    sourceId: applicationInsights.id
    serializedData: loadTextContent('../workbook/identity-propagation.json')
  }
}
