module ecoeco.local/podnet

go 1.22
