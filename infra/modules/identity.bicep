// One user-assigned managed identity: what a container app runs as, pulls its image with,
// and (through a federated credential on its app registration) authenticates to Entra with.

@description('Name of the managed identity.')
param name string

@description('Azure region of the identity.')
param location string

@description('Tags applied to the identity.')
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
// The service principal's object id: the `sub` of the identity's tokens, and the subject of
// the federated identity credentials that trust it.
output principalId string = identity.properties.principalId
