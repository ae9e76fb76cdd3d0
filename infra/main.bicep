// Orders Copilot on Azure: one resource group with three container apps (each with its own
// managed identity), a registry, logs, and Azure OpenAI. No secret anywhere: every
// service-to-service and service-to-Azure call authenticates with a managed identity.
//
// The Entra app registrations are not Bicep resources: hooks/postprovision creates them from
// infra/app-registrations.toml after this deployment, writes their ids to the azd environment
// (the *ClientId / *AppIdUri parameters below on the next provision) and applies them to the
// running container apps straight away.

targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment (AZURE_ENV_NAME); names the resource group and suffixes the app registrations.')
param environmentName string

@minLength(1)
@description('Primary Azure region of every resource.')
param location string

@description('Region of Azure OpenAI, where the model is offered; empty means the primary region.')
param openAiLocation string = ''

// A generally available model open to new deployments (gpt-4o-mini 2024-07-18 is not any more);
// `postprovision preprovision` checks it is offered in the region, with quota, before provisioning.
@description('Azure OpenAI model name.')
param openAiModelName string = 'gpt-5-mini'

@description('Azure OpenAI model version.')
param openAiModelVersion string = '2025-08-07'

@description('Name of the model deployment chat-app calls.')
param openAiDeploymentName string = 'gpt-5-mini'

@description('SKU of the model deployment: GlobalStandard (pay per token, highest availability) or Standard.')
param openAiDeploymentSku string = 'GlobalStandard'

@description('Capacity of the model deployment, in thousands of tokens per minute.')
@minValue(1)
param openAiDeploymentCapacity int = 30

@description('orders-api application (client) id, written by hooks/postprovision; empty on the first provision.')
param ordersApiClientId string = ''

@description('orders-api application id URI (api://<tenant id>/orders-api-<env>), written by hooks/postprovision.')
param ordersApiAppIdUri string = ''

@description('orders-mcp application (client) id, written by hooks/postprovision; empty on the first provision.')
param ordersMcpClientId string = ''

@description('orders-mcp application id URI (its canonical MCP endpoint, https://<fqdn>/mcp), written by hooks/postprovision.')
param ordersMcpAppIdUri string = ''

@description('chat-app application (client) id, written by hooks/postprovision; empty on the first provision.')
param chatAppClientId string = ''

@description('Agent mode of chat-app: none (the agent uses the sign-in of the user) or entra-agent-id (the agent acts as its own Microsoft Entra Agent ID identity, which hooks/postprovision then creates).')
@allowed([
  'none'
  'entra-agent-id'
])
param chatAppAgentIdentity string = 'none'

@description('Agent mode: application id of the agent identity blueprint, written by hooks/postprovision; empty otherwise.')
param chatAppAgentBlueprintId string = ''

@description('Agent mode: application id URI of the agent identity blueprint (what users sign in for), written by hooks/postprovision.')
param chatAppAgentBlueprintAppIdUri string = ''

@description('Agent mode: application id of the agent identity, written by hooks/postprovision; empty otherwise.')
param chatAppAgentId string = ''

@description('chat-app replicas at most. More than one deploys Azure Managed Redis for the state they share.')
@minValue(1)
param chatAppMaxReplicas int = 1

@description('Whether the chat-app container app exists already (azd: SERVICE_CHAT_APP_RESOURCE_EXISTS).')
param chatAppExists bool = false

@description('Whether the orders-mcp container app exists already (azd: SERVICE_ORDERS_MCP_RESOURCE_EXISTS).')
param ordersMcpExists bool = false

@description('Whether the orders-api container app exists already (azd: SERVICE_ORDERS_API_RESOURCE_EXISTS).')
param ordersApiExists bool = false

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var tenantId = tenant().tenantId

var chatAppName = 'chat-app-${resourceToken}'
var chatAppShared = chatAppMaxReplicas > 1
var ordersMcpName = 'orders-mcp-${resourceToken}'
var ordersApiName = 'orders-api-${resourceToken}'

// Container app URLs follow from the environment's domain, so each app can be told its own
// public URL (and its neighbours') without waiting for the others to exist.
var defaultDomain = appsEnvironment.outputs.defaultDomain
var chatAppUrl = 'https://${chatAppName}.${defaultDomain}'
var ordersMcpHost = '${ordersMcpName}.${defaultDomain}'
var ordersMcpPublicUrl = 'https://${ordersMcpHost}'
var ordersApiUrl = 'https://${ordersApiName}.internal.${defaultDomain}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module chatAppIdentity 'modules/identity.bicep' = {
  name: 'chat-app-identity'
  scope: rg
  params: {
    name: 'id-chat-app-${resourceToken}'
    location: location
    tags: tags
  }
}

module ordersMcpIdentity 'modules/identity.bicep' = {
  name: 'orders-mcp-identity'
  scope: rg
  params: {
    name: 'id-orders-mcp-${resourceToken}'
    location: location
    tags: tags
  }
}

module ordersApiIdentity 'modules/identity.bicep' = {
  name: 'orders-api-identity'
  scope: rg
  params: {
    name: 'id-orders-api-${resourceToken}'
    location: location
    tags: tags
  }
}

module registry 'modules/registry.bicep' = {
  name: 'registry'
  scope: rg
  params: {
    name: 'cr${resourceToken}'
    location: location
    tags: tags
    pullPrincipalIds: [
      chatAppIdentity.outputs.principalId
      ordersMcpIdentity.outputs.principalId
      ordersApiIdentity.outputs.principalId
    ]
  }
}

module appsEnvironment 'modules/container-apps-environment.bicep' = {
  name: 'container-apps-environment'
  scope: rg
  params: {
    name: 'cae-${resourceToken}'
    location: location
    tags: tags
    logAnalyticsWorkspaceName: monitoring.outputs.logAnalyticsWorkspaceName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

// Where operators follow one chat turn across the hops, from the traces the environment's
// OpenTelemetry agent sends to Application Insights.
module workbook 'modules/workbook.bicep' = {
  name: 'identity-propagation-workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

module openAi 'modules/openai.bicep' = {
  name: 'openai'
  scope: rg
  params: {
    name: 'oai-${resourceToken}'
    location: empty(openAiLocation) ? location : openAiLocation
    tags: tags
    deploymentName: openAiDeploymentName
    modelName: openAiModelName
    modelVersion: openAiModelVersion
    deploymentSkuName: openAiDeploymentSku
    deploymentCapacity: openAiDeploymentCapacity
    chatAppPrincipalId: chatAppIdentity.outputs.principalId
  }
}

// Every service: where Entra is, which tenant, JSON logs, and the suffix of the app
// registrations' identifier URIs: `<environment>-<resource token>`, exactly what postprovision
// gives them (unique per deployment, so two people's `dev` environments never share an app).
var commonEnv = [
  { name: 'ENTRA_AUTHORITY', value: 'https://login.microsoftonline.com' }
  { name: 'ENTRA_TENANT_ID', value: tenantId }
  { name: 'LOG_FORMAT', value: 'json' }
  { name: 'IDENTITY_SUFFIX', value: '${environmentName}-${resourceToken}' }
]

// orders-api: internal ingress only, one replica, SQLite on the replica's own disk, seeded at
// start. A demo store, not a production database: its data is reset whenever the replica restarts.
module ordersApi 'modules/container-app.bicep' = {
  name: 'orders-api-app'
  scope: rg
  params: {
    name: ordersApiName
    location: location
    tags: tags
    serviceName: 'orders-api'
    environmentId: appsEnvironment.outputs.id
    identityId: ordersApiIdentity.outputs.id
    registryServer: registry.outputs.loginServer
    targetPort: 3002
    external: false
    exists: ordersApiExists
    dataVolume: true
    minReplicas: 1
    maxReplicas: 1
    env: concat(commonEnv, [
      { name: 'ORDERS_API_ADDR', value: '0.0.0.0:3002' }
      { name: 'ORDERS_API_DATABASE', value: '/data/orders.db' }
      { name: 'ORDERS_API_PUBLIC_URL', value: ordersApiUrl }
      { name: 'ORDERS_API_CLIENT_ID', value: ordersApiClientId }
      { name: 'ORDERS_API_APP_ID_URI', value: ordersApiAppIdUri }
      // The one client whose users' tokens orders-api accepts (orders-mcp's On-Behalf-Of).
      { name: 'ORDERS_MCP_CLIENT_ID', value: ordersMcpClientId }
    ])
  }
}

// orders-mcp: external ingress so IDE clients (VS Code) can reach it; exchanges the user's
// token for orders-api On-Behalf-Of, authenticating with its managed identity.
module ordersMcp 'modules/container-app.bicep' = {
  name: 'orders-mcp-app'
  scope: rg
  params: {
    name: ordersMcpName
    location: location
    tags: tags
    serviceName: 'orders-mcp'
    environmentId: appsEnvironment.outputs.id
    identityId: ordersMcpIdentity.outputs.id
    registryServer: registry.outputs.loginServer
    targetPort: 3001
    external: true
    exists: ordersMcpExists
    // MCP sessions and the On-Behalf-Of token cache live in the replica's memory.
    minReplicas: 1
    maxReplicas: 1
    env: concat(commonEnv, [
      { name: 'ORDERS_MCP_ADDR', value: '0.0.0.0:3001' }
      { name: 'ORDERS_MCP_PUBLIC_URL', value: ordersMcpPublicUrl }
      { name: 'ORDERS_MCP_CLIENT_ID', value: ordersMcpClientId }
      { name: 'ORDERS_MCP_APP_ID_URI', value: ordersMcpAppIdUri }
      { name: 'ORDERS_MCP_ALLOWED_HOSTS', value: ordersMcpHost }
      { name: 'ORDERS_MCP_MANAGED_IDENTITY_CLIENT_ID', value: ordersMcpIdentity.outputs.clientId }
      { name: 'ORDERS_MCP_DOWNSTREAM', value: 'obo' }
      { name: 'ORDERS_API_URL', value: ordersApiUrl }
      { name: 'ORDERS_API_CLIENT_ID', value: ordersApiClientId }
      { name: 'ORDERS_API_APP_ID_URI', value: ordersApiAppIdUri }
    ])
  }
}

// chat-app's shared state, when it runs more than one replica.
module redis 'modules/redis.bicep' = if (chatAppShared) {
  name: 'chat-app-redis'
  scope: rg
  params: {
    name: 'redis-${resourceToken}'
    location: location
    tags: tags
    principalId: chatAppIdentity.outputs.principalId
  }
}

// chat-app: the site users sign in to. One replica keeps sessions in SQLite on its disk; more
// share them in Redis, with session affinity so a turn's event stream and the user's answer to
// an approval reach the replica running that turn.
module chatApp 'modules/container-app.bicep' = {
  name: 'chat-app-app'
  scope: rg
  params: {
    name: chatAppName
    location: location
    tags: tags
    serviceName: 'chat-app'
    environmentId: appsEnvironment.outputs.id
    identityId: chatAppIdentity.outputs.id
    registryServer: registry.outputs.loginServer
    targetPort: 3000
    external: true
    exists: chatAppExists
    dataVolume: true
    minReplicas: 1
    maxReplicas: chatAppMaxReplicas
    stickySessions: chatAppShared
    env: concat(commonEnv, [
      { name: 'CHAT_APP_ADDR', value: '0.0.0.0:3000' }
      { name: 'CHAT_APP_URL', value: chatAppUrl }
      { name: 'CHAT_APP_CLIENT_ID', value: chatAppClientId }
      { name: 'CHAT_APP_AGENT_IDENTITY', value: chatAppAgentIdentity }
      { name: 'CHAT_APP_AGENT_BLUEPRINT_ID', value: chatAppAgentBlueprintId }
      { name: 'CHAT_APP_AGENT_BLUEPRINT_APP_ID_URI', value: chatAppAgentBlueprintAppIdUri }
      { name: 'CHAT_APP_AGENT_ID', value: chatAppAgentId }
      { name: 'CHAT_APP_MANAGED_IDENTITY_CLIENT_ID', value: chatAppIdentity.outputs.clientId }
      { name: 'CHAT_APP_SESSION_DB', value: '/data/sessions.db' }
      { name: 'CHAT_APP_SESSION_STORE', value: chatAppShared ? redis!.outputs.url : 'sqlite' }
      // Redis takes the identity's object id as the user name and an Entra token as password.
      { name: 'CHAT_APP_REDIS_ENTRA_USER', value: chatAppShared ? chatAppIdentity.outputs.principalId : '' }
      { name: 'ORDERS_MCP_URL', value: '${ordersMcpPublicUrl}/mcp' }
      { name: 'ORDERS_MCP_CLIENT_ID', value: ordersMcpClientId }
      { name: 'ORDERS_MCP_APP_ID_URI', value: ordersMcpAppIdUri }
      { name: 'MODEL_PROVIDER', value: 'azure' }
      { name: 'AZURE_OPENAI_ENDPOINT', value: openAi.outputs.endpoint }
      { name: 'AZURE_OPENAI_DEPLOYMENT', value: openAi.outputs.deploymentName }
    ])
  }
}

// azd stores every output in the environment (.azure/<env>/.env); hooks/postprovision and
// `cargo xtask verify` read them from there.
output AZURE_TENANT_ID string = tenantId
output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = rg.name
// With the environment name and subscription, tells this deployment's app registrations from
// everyone else's in the tenant (the hook's tags).
output AZURE_RESOURCE_TOKEN string = resourceToken
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = registry.outputs.loginServer
output AZURE_CONTAINER_REGISTRY_NAME string = registry.outputs.name
output AZURE_CONTAINER_APPS_ENVIRONMENT_NAME string = appsEnvironment.outputs.name
output AZURE_LOG_ANALYTICS_WORKSPACE_NAME string = monitoring.outputs.logAnalyticsWorkspaceName
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output AZURE_OPENAI_ENDPOINT string = openAi.outputs.endpoint
output AZURE_OPENAI_DEPLOYMENT string = openAi.outputs.deploymentName

output CHAT_APP_URL string = chatAppUrl
output ORDERS_MCP_URL string = '${ordersMcpPublicUrl}/mcp'
output ORDERS_MCP_PUBLIC_URL string = ordersMcpPublicUrl
output ORDERS_API_URL string = ordersApiUrl

output CHAT_APP_CONTAINER_APP_NAME string = chatApp.outputs.name
output ORDERS_MCP_CONTAINER_APP_NAME string = ordersMcp.outputs.name
output ORDERS_API_CONTAINER_APP_NAME string = ordersApi.outputs.name

output CHAT_APP_MANAGED_IDENTITY_CLIENT_ID string = chatAppIdentity.outputs.clientId
output CHAT_APP_MANAGED_IDENTITY_PRINCIPAL_ID string = chatAppIdentity.outputs.principalId
output ORDERS_MCP_MANAGED_IDENTITY_CLIENT_ID string = ordersMcpIdentity.outputs.clientId
output ORDERS_MCP_MANAGED_IDENTITY_PRINCIPAL_ID string = ordersMcpIdentity.outputs.principalId
output ORDERS_API_MANAGED_IDENTITY_CLIENT_ID string = ordersApiIdentity.outputs.clientId
output ORDERS_API_MANAGED_IDENTITY_PRINCIPAL_ID string = ordersApiIdentity.outputs.principalId
