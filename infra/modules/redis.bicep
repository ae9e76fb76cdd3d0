// Azure Managed Redis for chat-app's shared state (sessions, conversations, the one-turn lease)
// when chat-app runs more than one replica. Microsoft Entra authentication only: access keys
// are disabled and chat-app's managed identity gets the built-in "default" access policy
// ("Use Microsoft Entra for cache authentication"). TLS only (port 10000). EnterpriseCluster
// presents one endpoint, so a non-cluster client works; chat-app keeps the keys of one
// conversation under one hash tag.

@description('Name of the Azure Managed Redis instance.')
param name string

@description('Azure region of the instance.')
param location string

@description('Tags applied to the instance.')
param tags object

@description('Object (principal) id of the managed identity that reads and writes the cache.')
param principalId string

resource cache 'Microsoft.Cache/redisEnterprise@2025-04-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Balanced_B0'
  }
  properties: {
    highAvailability: 'Enabled'
    minimumTlsVersion: '1.2'
  }
}

resource database 'Microsoft.Cache/redisEnterprise/databases@2025-04-01' = {
  parent: cache
  name: 'default'
  properties: {
    clientProtocol: 'Encrypted'
    port: 10000
    clusteringPolicy: 'EnterpriseCluster'
    // Sessions and conversations must not be evicted to make room: they expire by themselves.
    evictionPolicy: 'NoEviction'
    accessKeysAuthentication: 'Disabled'
  }
}

resource access 'Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments@2025-04-01' = {
  parent: database
  name: 'chatapp'
  properties: {
    accessPolicyName: 'default'
    user: {
      objectId: principalId
    }
  }
}

// What chat-app connects to: CHAT_APP_SESSION_STORE.
output url string = 'rediss://${cache.properties.hostName}:${database.properties.port}'
