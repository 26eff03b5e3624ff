// Vite bundles imported stylesheets (src/app.css becomes a hashed asset, linked, not inline).
declare module "*.css";
