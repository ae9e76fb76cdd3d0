// Azure OpenAI with one model deployment. Keys are disabled: callers authenticate with Entra
// tokens, and only chat-app's managed identity may call the model.

@description('Name of the account; also its custom subdomain (<name>.openai.azure.com).')
param name string

@description('Azure region of the account (model availability differs per region).')
param location string

@description('Tags applied to the account.')
param tags object

@description('Name of the model deployment, as chat-app calls it (AZURE_OPENAI_DEPLOYMENT).')
param deploymentName string

@description('Model name, e.g. gpt-5-mini.')
param modelName string

@description('Model version, e.g. 2025-08-07.')
param modelVersion string

@description('Deployment SKU, e.g. GlobalStandard or Standard.')
param deploymentSkuName string

@description('Deployment capacity, in thousands of tokens per minute.')
@minValue(1)
param deploymentCapacity int

@description('Principal (object) id of chat-app\'s managed identity: the only caller given access.')
param chatAppPrincipalId string

// Built-in role: Cognitive Services OpenAI User (call deployed models; no management rights).
var openAiUserRoleId = '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd'

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  name: name
  location: location
  tags: tags
  kind: 'OpenAI'
  sku: {
    name: 'S0'
  }
  properties: {
    customSubDomainName: name
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

resource deployment 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: account
  name: deploymentName
  sku: {
    name: deploymentSkuName
    capacity: deploymentCapacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: modelName
      version: modelVersion
    }
  }
}

resource chatAppOpenAiUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, chatAppPrincipalId, openAiUserRoleId)
  scope: account
  properties: {
    principalId: chatAppPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', openAiUserRoleId)
  }
}

output name string = account.name
output endpoint string = account.properties.endpoint
output deploymentName string = deployment.name
