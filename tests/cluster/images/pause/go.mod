module ecoeco.local/pause

go 1.22
