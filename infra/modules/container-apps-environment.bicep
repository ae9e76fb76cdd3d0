// The Container Apps environment (Consumption workload profile), logging to Log Analytics, with
// the managed OpenTelemetry agent forwarding the services' traces and logs to Application
// Insights.

@description('Name of the Container Apps environment.')
param name string

@description('Azure region of the environment.')
param location string

@description('Tags applied to the environment.')
param tags object

@description('Name of the Log Analytics workspace (same resource group) that receives the apps\' console logs.')
param logAnalyticsWorkspaceName string

@description('Name of the Application Insights component (same resource group) the OpenTelemetry agent sends traces and logs to.')
param applicationInsightsName string

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: logAnalyticsWorkspaceName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// A preview API version, on purpose: `appInsightsConfiguration` and `openTelemetryConfiguration`
// (the managed OpenTelemetry agent) exist only in Microsoft.App preview versions; no GA version
// up to 2025-07-01 has them. This is the version Microsoft's "Collect and read OpenTelemetry
// data in Azure Container Apps" uses in its Bicep example. hooks/postprovision/tests/bicep.rs
// allows it for this one resource type, for this reason.
resource environment 'Microsoft.App/managedEnvironments@2024-10-02-preview' = {
  name: name
  location: location
  tags: tags
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logAnalytics.properties.customerId
        // The platform's log shipping needs the workspace key. It is read here, inside ARM, and
        // is never a parameter or an output of this deployment.
        sharedKey: logAnalytics.listKeys().primarySharedKey
      }
    }
    // The managed agent takes the connection string only (no managed identity), which is why
    // the component allows local authentication (monitoring.bicep). It is read here, inside
    // ARM, like the workspace key. The agent injects OTEL_EXPORTER_OTLP_ENDPOINT and
    // OTEL_EXPORTER_OTLP_PROTOCOL=grpc into every app, which the services read
    // (service_kit::telemetry): nothing else is set per app.
    appInsightsConfiguration: {
      connectionString: applicationInsights.properties.ConnectionString
    }
    openTelemetryConfiguration: {
      tracesConfiguration: {
        destinations: [
          'appInsights'
        ]
      }
      logsConfiguration: {
        destinations: [
          'appInsights'
        ]
      }
    }
    workloadProfiles: [
      {
        name: 'Consumption'
        workloadProfileType: 'Consumption'
      }
    ]
  }
}

output id string = environment.id
output name string = environment.name
// Apps are reachable at <app>.<defaultDomain> (external) or <app>.internal.<defaultDomain>.
output defaultDomain string = environment.properties.defaultDomain
