module ecoeco.local/sample

go 1.22
