// The Container Apps environment (Consumption workload profile), logging to Log Analytics.

@description('Name of the Container Apps environment.')
param name string

@description('Azure region of the environment.')
param location string

@description('Tags applied to the environment.')
param tags object

@description('Name of the Log Analytics workspace (same resource group) that receives the apps\' console logs.')
param logAnalyticsWorkspaceName string

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: logAnalyticsWorkspaceName
}

resource environment 'Microsoft.App/managedEnvironments@2024-03-01' = {
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
