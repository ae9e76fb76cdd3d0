// Log Analytics (the Container Apps environment's logs) and a workspace-based Application
// Insights component for the services' telemetry.

@description('Name of the Log Analytics workspace.')
param logAnalyticsName string

@description('Name of the Application Insights component.')
param applicationInsightsName string

@description('Azure region of both resources.')
param location string

@description('Tags applied to both resources.')
param tags object

@description('Days Log Analytics keeps data; 30 is the minimum and is free of retention charges.')
@minValue(30)
param retentionInDays int = 30

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    // Local (instrumentation-key) ingestion stays on because the Container Apps managed
    // OpenTelemetry agent, which carries the services' traces and logs here, sends with the
    // connection string only. Microsoft's "Collect and read OpenTelemetry data in Azure Container
    // Apps": "the Application Insights resource must allow local authentication to receive data
    // from the OpenTelemetry data agent". That page also says the instrumentation key is not a
    // secret: it lets a holder write telemetry into this component, never read it. Reading
    // (the portal, the workbook, KQL) still needs Entra and Azure RBAC. docs/azure.md explains
    // the trade-off.
    DisableLocalAuth: false
  }
}

output logAnalyticsWorkspaceName string = logAnalytics.name
output applicationInsightsName string = applicationInsights.name
